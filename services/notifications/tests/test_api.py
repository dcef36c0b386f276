"""The subscriptions API: who may do what, what a body must be, and that a secret is shown
once and kept encrypted."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import httpx
import pytest
from fastapi import FastAPI

from score_chassis.tokens import TokenAuthority
from score_testing.service import TEST_SECRET, bearer

from .conftest import ADMIN, subscribe

HOOK = {"kind": "webhook", "url": "http://127.0.0.1:9/hooks"}
MAIL = {"kind": "email", "address": "avisos@camara-tarija.bo"}
SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()


def body(**changes: Any) -> dict[str, Any]:
    return {"chamber": "Cámara de Tarija", "regions": ["tarija"], "channel": HOOK, **changes}


def _expired() -> dict[str, str]:
    token = TokenAuthority(TEST_SECRET).issue("admin", ttl=dt.timedelta(seconds=-1))
    return {"Authorization": f"Bearer {token}"}


def _foreign_key() -> dict[str, str]:
    token = TokenAuthority("another-secret-another-secret-0123456789").issue("admin")
    return {"Authorization": f"Bearer {token}"}


TOKENS: Final[dict[str, Callable[[], dict[str, str]]]] = {
    "no token": dict,
    "not a token": lambda: {"Authorization": "Bearer not-a-token"},
    "expired": _expired,
    "signed with another key": _foreign_key,
    "admin": lambda: bearer("admin"),
    "chamber": lambda: bearer("chamber", regions=["tarija"]),
    "staff": lambda: bearer("staff"),
    "trainer": lambda: bearer("trainer"),
    "reader": lambda: bearer("reader"),
}
ALLOWED: Final = {"admin", "chamber"}
REFUSED: Final = {"staff", "trainer", "reader"}

ENDPOINTS: Final = {
    "create": ("POST", "/v1/subscriptions", 201),
    "list": ("GET", "/v1/subscriptions", 200),
    "get": ("GET", "/v1/subscriptions/{id}", 200),
    "delete": ("DELETE", "/v1/subscriptions/{id}", 204),
    "deliveries": ("GET", "/v1/deliveries?subscription_id={id}", 200),
    "all deliveries": ("GET", "/v1/deliveries", 200),
}


@pytest.mark.parametrize("token", TOKENS)
@pytest.mark.parametrize("name", ENDPOINTS)
async def test_admins_and_chambers_manage_subscriptions_and_nobody_else(
    client: httpx.AsyncClient, name: str, token: str
) -> None:
    made = await subscribe(client, channel=HOOK)
    method, path, status = ENDPOINTS[name]
    response = await client.request(
        method,
        path.format(id=made["id"]),
        json=body() if method == "POST" else None,
        headers=TOKENS[token](),
    )
    expected = status if token in ALLOWED else 403 if token in REFUSED else 401
    assert response.status_code == expected, response.text
    if expected == 401:
        assert response.headers["WWW-Authenticate"] == "Bearer"
    if expected >= 400:
        assert response.headers["content-type"] == "application/problem+json"
        left = await client.get(f"/v1/subscriptions/{made['id']}", headers=ADMIN)
        assert left.status_code == 200  # nothing was deleted


async def test_a_chamber_names_its_own_regions_only(client: httpx.AsyncClient) -> None:
    tarija = bearer("chamber", regions=["tarija"])
    response = await client.post(
        "/v1/subscriptions", json=body(regions=["tarija", "potosi"]), headers=tarija
    )
    assert response.status_code == 403, response.text
    assert "own regions" in response.json()["detail"]
    national = await client.post(
        "/v1/subscriptions", json=body(regions=[], national=True), headers=tarija
    )
    assert national.status_code == 201, national.text


async def test_a_chamber_sees_only_its_own_subscriptions(client: httpx.AsyncClient) -> None:
    tarija = bearer("chamber", regions=["tarija"])
    potosi = bearer("chamber", regions=["potosi"])
    mine = await subscribe(client, channel=HOOK, headers=tarija)
    by_admin_for_tarija = await subscribe(client, channel=MAIL)
    theirs = await subscribe(client, regions=["potosi"], channel=HOOK, headers=potosi)
    national_by_admin = await subscribe(client, regions=[], national=True, channel=MAIL)

    # A renewed token of the same region manages the chamber's subscriptions still.
    renewed = bearer("chamber", regions=["tarija"])
    listed = (await client.get("/v1/subscriptions", headers=renewed)).json()["items"]
    assert {s["id"] for s in listed} == {mine["id"], by_admin_for_tarija["id"]}
    for other in (theirs, national_by_admin):
        assert (
            await client.get(f"/v1/subscriptions/{other['id']}", headers=renewed)
        ).status_code == 404
        assert (
            await client.delete(f"/v1/subscriptions/{other['id']}", headers=renewed)
        ).status_code == 404
        assert (
            await client.get(
                "/v1/deliveries", params={"subscription_id": other["id"]}, headers=renewed
            )
        ).status_code == 404
    everything = (await client.get("/v1/subscriptions", headers=ADMIN)).json()["items"]
    assert len(everything) == 4


async def test_the_secret_is_answered_once_and_kept_encrypted(
    client: httpx.AsyncClient, app: FastAPI, tmp_path: Path
) -> None:
    made = await subscribe(client, channel=HOOK)
    secret = made["secret"]
    assert secret.startswith("whsec_")
    assert 24 <= len(base64.b64decode(secret.removeprefix("whsec_"))) <= 32
    given = await subscribe(client, channel={**HOOK, "secret": SECRET})
    assert given["secret"] == SECRET
    for answer in (
        await client.get(f"/v1/subscriptions/{made['id']}", headers=ADMIN),
        await client.get("/v1/subscriptions", headers=ADMIN),
    ):
        assert "secret" not in answer.text and secret not in answer.text
    # A dump of the database alone does not reveal them.
    await app.state.runtime.database.dispose()
    dumped = _dump(tmp_path)
    for kept in (secret, SECRET):
        assert kept.encode() not in dumped
        assert kept.removeprefix("whsec_").encode() not in dumped


async def test_an_e_mail_subscription_in_english(client: httpx.AsyncClient) -> None:
    made = await subscribe(client, channel=MAIL, language="en", regions=["tarija", "beni"])
    assert made["secret"] is None
    shown = (await client.get(f"/v1/subscriptions/{made['id']}", headers=ADMIN)).json()
    assert shown["channel"] == {"kind": "email", "url": None, "address": MAIL["address"]}
    assert (shown["language"], shown["regions"], shown["status"]) == (
        "en",
        ["tarija", "beni"],
        "active",
    )
    default = await subscribe(client, channel=MAIL)
    assert default["language"] == "es"


async def test_a_deleted_subscription_is_gone(client: httpx.AsyncClient) -> None:
    made = await subscribe(client, channel=HOOK)
    assert (
        await client.delete(f"/v1/subscriptions/{made['id']}", headers=ADMIN)
    ).status_code == 204
    assert (await client.get(f"/v1/subscriptions/{made['id']}", headers=ADMIN)).status_code == 404
    assert (
        await client.delete(f"/v1/subscriptions/{made['id']}", headers=ADMIN)
    ).status_code == 404
    assert (await client.get("/v1/subscriptions", headers=ADMIN)).json()["items"] == []


def _dump(folder: Path) -> bytes:
    """Every byte of the SQLite database (and its journal) as a copy of it would hold."""
    return b"".join(path.read_bytes() for path in sorted(folder.glob("notifications.db*")))


BAD_INPUT: Final = [
    ({"regions": ["atlantis"]}, "regions", "unknown-region"),
    ({"regions": [], "national": False}, "regions", "nothing-to-subscribe-to"),
    ({"language": "fr"}, "language", "literal_error"),
    ({"chamber": ""}, "chamber", "string_too_short"),
    ({"channel": {"kind": "sms", "url": "x"}}, "channel.kind", "literal_error"),
    ({"channel": {"kind": "webhook"}}, "channel.url", "missing"),
    ({"channel": {**HOOK, "secret": "not-a-secret"}}, "channel.secret", "webhook-secret"),
    ({"channel": {**HOOK, "secret": "whsec_!!!"}}, "channel.secret", "webhook-secret"),
    (
        {"channel": {**HOOK, "secret": "whsec_" + base64.b64encode(b"short").decode()}},
        "channel.secret",
        "webhook-secret",
    ),
    ({"channel": {"kind": "webhook", "url": "ftp://127.0.0.1/x"}}, "channel.url", "webhook-url"),
    ({"channel": {**HOOK, "address": "a@b.bo"}}, "channel.address", "not-for-this-kind"),
    ({"channel": {"kind": "email"}}, "channel.address", "missing"),
    ({"channel": {"kind": "email", "address": "not an address"}}, "channel.address", None),
    ({"channel": {**MAIL, "url": HOOK["url"]}}, "channel.url", "not-for-this-kind"),
    ({"unexpected": 1}, "unexpected", "extra_forbidden"),
]


@pytest.mark.parametrize(("changes", "field", "rule"), BAD_INPUT)
async def test_bad_input_is_422_naming_the_field(
    client: httpx.AsyncClient, changes: dict[str, Any], field: str, rule: str | None
) -> None:
    response = await client.post("/v1/subscriptions", json=body(**changes), headers=ADMIN)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    errors = response.json()["errors"]
    assert field in [e["field"] for e in errors], errors
    if rule is not None:
        assert rule in [e["rule"] for e in errors], errors


async def test_unknown_ids_are_404(client: httpx.AsyncClient) -> None:
    for method, path in (
        ("GET", "/v1/subscriptions/nope"),
        ("DELETE", "/v1/subscriptions/nope"),
        ("GET", "/v1/deliveries?subscription_id=nope"),
    ):
        response = await client.request(method, path, headers=ADMIN)
        assert response.status_code == 404, response.text
