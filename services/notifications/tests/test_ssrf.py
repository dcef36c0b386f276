"""Webhooks never point inward: loopback, private, link-local (the cloud's metadata address),
and the names that resolve to them are refused, when subscribing and again when sending,
unless the host is allowed by `SCORE_WEBHOOK_ALLOWED_HOSTS`."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from score_notifications import ssrf
from score_notifications.main import build_app
from score_testing.service import serving

from .conftest import ADMIN, settings

REFUSED = [
    "http://127.0.0.1/hooks",
    "http://127.9.9.9:8080/hooks",
    "http://10.0.0.7/hooks",
    "http://172.16.5.4/hooks",
    "http://192.168.1.20/hooks",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]:8080/hooks",
    "http://[fe80::1]/hooks",
    "http://[fc00::1]/hooks",
    "http://[::ffff:127.0.0.1]/hooks",
    "http://[::ffff:10.0.0.1]/hooks",
    "http://0.0.0.0/hooks",
    "http://224.0.0.1/hooks",
    "http://localhost/hooks",
    "http://LOCALHOST.:8080/hooks",
]


@pytest.mark.parametrize("url", REFUSED)
async def test_inward_urls_are_refused(url: str) -> None:
    with pytest.raises(ssrf.RefusedUrl):
        await ssrf.checked(url, allowed_hosts=())


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.org/x",
        "file:///etc/passwd",
        "http://user:pw@8.8.8.8/",
        "no-scheme",
        "http://",
    ],
)
async def test_only_plain_http_urls_with_a_host(url: str) -> None:
    with pytest.raises(ssrf.RefusedUrl):
        await ssrf.checked(url, allowed_hosts=())


async def test_a_public_address_is_called_at_the_address_checked() -> None:
    target = await ssrf.checked("https://8.8.8.8/hooks?x=1", allowed_hosts=())
    assert (target.address, target.port, target.allowed) == ("8.8.8.8", 443, False)
    assert target.connect_url() == "https://8.8.8.8:443/hooks?x=1"


async def test_allowed_hosts_may_point_inward() -> None:
    for url, host in (
        ("http://127.0.0.1:9000/h", "127.0.0.1"),
        ("http://localhost:9000/h", "localhost"),
        ("http://[::1]:9000/h", "::1"),
    ):
        target = await ssrf.checked(url, allowed_hosts={host})
        assert target.allowed
        assert ipaddress.ip_address(target.address).is_loopback
    with pytest.raises(ssrf.RefusedUrl):  # allowing one host allows no other
        await ssrf.checked("http://10.0.0.1/h", allowed_hosts={"127.0.0.1"})


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "169.254.169.254", "::1", "fe80::1", "fc00::1", "::ffff:127.0.0.1"],
)
def test_each_inward_address_has_a_reason(address: str) -> None:
    assert ssrf.refusal_of(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("url", ["http://127.0.0.1/h", "http://[::1]/h", "http://localhost/h"])
async def test_subscribing_to_an_inward_url_is_422_on_channel_url(tmp_path: Path, url: str) -> None:
    app = build_app(settings(tmp_path, webhook_allowed_hosts=""))
    async with serving(app) as client:
        response = await client.post(
            "/v1/subscriptions",
            json={
                "chamber": "Cámara de Tarija",
                "regions": ["tarija"],
                "channel": {"kind": "webhook", "url": url},
            },
            headers=ADMIN,
        )
    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert (error["field"], error["rule"]) == ("channel.url", "webhook-url")
    assert "SCORE_WEBHOOK_ALLOWED_HOSTS" in error["reason"]


async def test_the_setting_lets_a_subscription_point_at_an_allowed_host(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    assert app.state.settings.allowed_hosts == {"127.0.0.1"}
    response = await client.post(
        "/v1/subscriptions",
        json={
            "chamber": "Cámara de Tarija",
            "regions": ["tarija"],
            "channel": {"kind": "webhook", "url": "http://127.0.0.1:9/h"},
        },
        headers=ADMIN,
    )
    assert response.status_code == 201, response.text
