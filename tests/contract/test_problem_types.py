"""Every problem type is an absolute URI at the service that answered it, and every service
answers a page for every type there is: what it means, and what to do."""

from __future__ import annotations

import importlib
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from score_chassis.http.problems import PROBLEM_TYPES
from score_cli.up import installed_services
from score_testing.service import TEST_SECRET

ROOT = Path(__file__).resolve().parents[2]
PUBLIC_URL = "https://score.example.org"
MODULES = {service.name: service.module for service in installed_services()}


@pytest.fixture
async def clients(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    """Each service's app, behind a public address, not started: the pages need nothing."""
    monkeypatch.setenv("SCORE_PUBLIC_URL", PUBLIC_URL)
    monkeypatch.setenv("SCORE_AUTH_SECRET", TEST_SECRET)
    monkeypatch.setenv("SCORE_NOTIFICATIONS_SECRET_KEY", TEST_SECRET)
    out = {}
    for name, module in MODULES.items():
        monkeypatch.setenv("SCORE_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / name}.db")
        app = importlib.import_module(f"{module}.main").build_app()
        transport = httpx.ASGITransport(app=app)
        out[name] = httpx.AsyncClient(transport=transport, base_url="http://service")
    yield out
    for client in out.values():
        await client.aclose()


async def test_every_service_answers_a_page_for_every_problem_type(
    clients: dict[str, httpx.AsyncClient],
) -> None:
    assert set(clients) == {"enrolment", "visits", "indicators", "notifications"}
    for name, client in clients.items():
        for kind in PROBLEM_TYPES.values():
            page = await client.get(kind.path)
            assert page.status_code == 200, (name, kind.slug)
            assert page.headers["content-type"].startswith("text/html")
            assert f"<h1>{kind.title}</h1>" in page.text
            assert f"HTTP {kind.status}" in page.text
            assert f"<code>{PUBLIC_URL}/problems/{kind.slug}</code>" in page.text
            assert "What it means" in page.text and "What to do" in page.text


async def test_an_unknown_problem_type_is_not_found(
    clients: dict[str, httpx.AsyncClient],
) -> None:
    for client in clients.values():
        answer = await client.get("/problems/no-such-problem")
        assert answer.status_code == 404
        assert answer.headers["content-type"] == "application/problem+json"


async def test_a_problem_answered_names_its_type_absolutely_and_the_type_resolves(
    clients: dict[str, httpx.AsyncClient],
) -> None:
    for name, client in clients.items():
        problem = (await client.get(f"/schemas/{name}/no_such_event.v1.json")).json()
        assert problem["type"] == f"{PUBLIC_URL}/problems/not-found"
        page = await client.get(problem["type"].removeprefix(PUBLIC_URL))
        assert page.status_code == 200
        assert "<h1>Not found</h1>" in page.text


async def test_without_a_public_url_the_type_is_at_the_address_the_service_binds(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SCORE_AUTH_SECRET", TEST_SECRET)
    monkeypatch.setenv("SCORE_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'v.db'}")
    monkeypatch.setenv("SCORE_HTTP_HOST", "0.0.0.0")
    monkeypatch.setenv("SCORE_HTTP_PORT", "9102")
    app = importlib.import_module("score_visits.main").build_app()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        problem = (await client.get("/schemas/visits/no_such_event.v1.json")).json()
    assert problem["type"] == "http://localhost:9102/problems/not-found"


def test_every_problem_type_the_code_names_is_one_there_is() -> None:
    # A type named in code or its documentation (OpenAPI descriptions) must have its page.
    sources = [*ROOT.glob("chassis/src/**/*.py"), *ROOT.glob("services/*/src/**/*.py")]
    named = {
        (path.relative_to(ROOT), slug)
        for path in sources
        for slug in re.findall(r"/problems/([a-z][a-z-]*)", path.read_text())
    }
    assert {slug for _, slug in named} <= set(PROBLEM_TYPES), named
