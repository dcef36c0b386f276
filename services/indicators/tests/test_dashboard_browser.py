"""The dashboard as its readers see it: the real service, fed by a real nats-server, opened in a
real headless Chromium. The figures on the page are the API's, a new training shows on it
within seconds without a reload, and it speaks Spanish, or English when asked."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from score_chassis.tables import rebuilds
from score_chassis.tokens import TokenAuthority
from score_chassis.view import mark, moved
from score_contracts.envelope import Envelope
from score_contracts.events import (
    EnterpriseEnrolled,
    EnterpriseRegistered,
    Event,
    Headcount,
    ParticipantsTrained,
    TrainerRegistered,
)
from score_contracts.examples import example, example_envelope
from score_indicators.main import build_app
from score_indicators.projection import PROJECTION, project_all
from score_indicators.settings import IndicatorsSettings
from score_testing.browser import Browser, Page, chromium, require_chromium, served
from score_testing.nats import free_port
from score_testing.service import TEST_SECRET
from score_testing.streams import publish_envelopes, wait_for

pytestmark = pytest.mark.browser

HEADLINE = (
    "enterprises_trained",
    "participants_trained",
    "employees_benefited",
    "trainers_trained",
    "cost_recovery_pct",
    "regions_active",
    "trainers_certified",
    "modules_completed",
    "visits_completed",
    "improvements_recorded",
    "case_studies_published",
)
CONSUMER = "indicators-projection-enrolment"
LIVE_WITHIN = 5.0
"""How soon a new training must show on an open page."""


def token(role: str = "admin", regions: Iterable[str] = ()) -> str:
    return TokenAuthority(TEST_SECRET).issue(role, regions=regions)  # type: ignore[arg-type]


def enterprise_trained(n: int, region: str, trained_on: dt.date) -> list[Envelope[Event]]:
    """Enterprise `n` of `region` (220 employees) registered, enrolled and trained (5 people)."""
    enterprise, enrolment = f"ent-{n:04}", f"enr-{n:04}"
    events: list[Event] = [
        example(EnterpriseRegistered).model_copy(
            update={
                "enterprise_id": enterprise,
                "region": region,
                "workforce": Headcount(women=120, men=100),
            }
        ),
        example(EnterpriseEnrolled).model_copy(
            update={"enterprise_id": enterprise, "enrolment_id": enrolment}
        ),
        example(ParticipantsTrained).model_copy(
            update={
                "enterprise_id": enterprise,
                "enrolment_id": enrolment,
                "trained_on": trained_on,
            }
        ),
    ]
    return [example_envelope(event, stream_version=v) for v, event in enumerate(events, 1)]


def trainer(n: int, sex: str) -> Envelope[Event]:
    event = example(TrainerRegistered).model_copy(update={"trainer_id": f"tr-{n}", "sex": sex})
    return example_envelope(event, stream_version=1)


STORY = [
    *enterprise_trained(1, "la_paz", dt.date(2018, 3, 10)),
    *enterprise_trained(2, "la_paz", dt.date(2018, 6, 1)),
    *enterprise_trained(3, "santa_cruz", dt.date(2019, 2, 14)),
    *enterprise_trained(4, "potosi", dt.date(2019, 5, 20)),
    *enterprise_trained(5, "cochabamba", dt.date(2019, 9, 3)),
    # Two women of three trainers: a share of 66.7 %, written 66,7 in Spanish.
    trainer(1, "female"),
    trainer(2, "female"),
    trainer(3, "male"),
]


async def publish(nats_url: str, envelopes: Iterable[Envelope[Event]]) -> None:
    """The events on the enrolment stream, as the enrolment service's relay publishes them."""
    await publish_envelopes(nats_url, envelopes, region="national")


def app_on(tmp_path: Path, nats_url: str) -> FastAPI:
    return build_app(
        IndicatorsSettings(
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'indicators.db'}",
            nats_url=nats_url,
            auth_secret=TEST_SECRET,
            log_format="console",
        )
    )


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium(require_chromium()) as running:
        yield running


async def api_figures(base_url: str, auth: str, **params: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base_url) as http:
        response = await http.get(
            "/v1/indicators", params=params, headers={"Authorization": f"Bearer {auth}"}
        )
    assert response.status_code == 200, response.text
    values: dict[str, Any] = response.json()["indicators"]
    return values


async def shown(page: Page) -> dict[str, str]:
    """The headline figures on the page: each one's value (as the API gave it) and text."""
    found: dict[str, str] = await page.evaluate(
        """Object.fromEntries([...document.querySelectorAll('#totals [data-indicator]')]
            .map((e) => [e.dataset.indicator, JSON.stringify([e.dataset.value, e.textContent])]))"""
    )
    return found


def value_of(figures: dict[str, str], key: str) -> float | None:
    """The figure as the page holds it: a number, or None where the API said null."""
    value: str = json.loads(figures[key])[0]
    return float(value) if value else None


def text_of(figures: dict[str, str], key: str) -> str:
    text: str = json.loads(figures[key])[1]
    return text


def unexpected(errors: list[str]) -> list[str]:
    """What the page reported that is wrong: anything but the 404s of the endpoints this
    service does not have (targets, milestones), which the page hides."""
    return [error for error in errors if "status of 404" not in error]


async def loaded(page: Page) -> None:
    await page.wait_for("document.body.dataset.loaded", within=10)


@pytest.mark.nats
async def test_the_page_shows_the_api_figures_and_a_new_training_within_seconds(
    tmp_path: Path, nats_url: str, browser: Browser
) -> None:
    await publish(nats_url, STORY)
    app = app_on(tmp_path, nats_url)
    async with served(app) as server:
        admin = token()

        async def all_counted() -> dict[str, Any] | None:
            async with httpx.AsyncClient(base_url=server.url) as http:
                answer = await http.get(
                    "/v1/indicators", headers={"Authorization": f"Bearer {admin}"}
                )
            if answer.status_code != 200:
                return None
            values: dict[str, Any] = answer.json()["indicators"]
            return values if values["trainers_trained"] == 3 else None

        figures = await wait_for(all_counted, within=15)
        assert figures["enterprises_trained"] == 5

        page = await browser.new_page(f"{server.url}/?token={admin}")
        await loaded(page)
        # The token was taken out of the address, and kept for the tab.
        assert await page.evaluate("location.search") == ""
        assert await page.evaluate("sessionStorage.getItem('score.dashboard.token')") == admin
        assert await page.evaluate("document.documentElement.lang") == "es"
        assert await page.evaluate("document.querySelector('h1').textContent") == (
            "Indicadores de SCORE Bolivia"
        )

        on_page = await shown(page)
        for key in HEADLINE:
            assert value_of(on_page, key) == figures[key], key
        assert text_of(on_page, "employees_benefited") == "1.100"  # Spanish grouping
        detail = await page.evaluate("document.getElementById('detail-trainers').textContent")
        assert "66,7" in detail  # 2 of 3 trainers are women, with a decimal comma
        regions = await page.evaluate(
            """Object.fromEntries([...document.querySelectorAll('#region-chart [data-region]')]
                .map((g) => [g.dataset.region, g.dataset.value]))"""
        )
        assert regions["la_paz"] == "2" and regions["tarija"] == "0"
        assert len(regions) == 9
        months_shown = await page.evaluate(
            "document.getElementById('month-chart-enterprises').dataset.last"
        )
        assert months_shown == "5"
        assert await page.wait_for(
            "document.getElementById('live').dataset.state === 'on'", within=5
        )

        # A new training: the open page shows it by itself, without reloading.
        await page.evaluate("window.stillTheSamePage = true")
        began = time.monotonic()
        await publish(nats_url, enterprise_trained(6, "tarija", dt.date(2020, 1, 15)))
        await page.wait_for(
            """document.querySelector('[data-indicator="enterprises_trained"]').dataset.value
                === '6'""",
            within=LIVE_WITHIN,
        )
        took = time.monotonic() - began
        await page.wait_for(
            "document.querySelector('#region-chart [data-region=\"tarija\"]').dataset.value "
            "=== '1'",
            within=2,
        )
        assert await page.evaluate("window.stillTheSamePage") is True
        assert await page.evaluate("performance.getEntriesByType('navigation').length") == 1
        after = await api_figures(server.url, admin)
        on_page = await shown(page)
        for key in HEADLINE:
            assert value_of(on_page, key) == after[key], key
        print(f"the new training showed on the page {took:.2f}s after it was published")
        assert unexpected(page.errors) == []

        # In English, from the same service.
        english = await browser.new_page(f"{server.url}/?lang=en&token={admin}")
        await loaded(english)
        assert await english.evaluate("location.search") == "?lang=en"
        assert await english.evaluate("document.documentElement.lang") == "en"
        assert await english.evaluate("document.title") == "SCORE Bolivia indicators"
        assert await english.evaluate("document.querySelector('#totals dt').textContent") == (
            "Enterprises trained"
        )
        assert text_of(await shown(english), "employees_benefited") == "1,320"
        detail = await english.evaluate("document.getElementById('detail-trainers').textContent")
        assert "66.7" in detail
        assert await english.evaluate("document.getElementById('lang-switch').textContent") == (
            "Español"
        )
        assert unexpected(english.errors) == []


async def api_answer(base_url: str, auth: str, path: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base_url) as http:
        response = await http.get(path, headers={"Authorization": f"Bearer {auth}"})
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def test_the_targets_and_milestones_show_when_the_service_answers_them(
    tmp_path: Path, browser: Browser
) -> None:
    app = app_on(tmp_path, f"nats://127.0.0.1:{free_port()}")  # fed here, not by NATS
    async with served(app) as server:
        async with app.state.runtime.database.transaction() as conn:
            await project_all(conn, STORY)
            await moved(conn, PROJECTION, [CONSUMER])
        admin = token()

        async def reached() -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = (
                await api_answer(server.url, admin, "/v1/milestones?lang=en")
            )["milestones"]
            return found

        milestones = await wait_for(reached, within=10)  # the watch finds them in moments
        page = await browser.new_page(f"{server.url}/?lang=en&token={admin}")
        await loaded(page)
        await page.wait_for("!document.getElementById('targets').hidden")
        targets = (await api_answer(server.url, admin, "/v1/targets?phase=phase-3"))["targets"]
        shown_targets = await page.evaluate(
            """[...document.querySelectorAll('#target-list [data-target]')].map((item) => [
                 item.dataset.target,
                 item.querySelector('[role=progressbar]').getAttribute('aria-valuetext'),
                 item.classList.contains('met')])"""
        )
        assert [key for key, _, _ in shown_targets] == [t["key"] for t in targets]
        for (_, text, met), target in zip(shown_targets, targets, strict=True):
            assert f" of {target['target']:g}" in text
            assert met == target["met"]
        assert "Phase III" in await page.evaluate(
            "document.getElementById('targets-title').textContent"
        )
        spanish = await browser.new_page(f"{server.url}/?token={admin}")
        await spanish.wait_for("!document.getElementById('targets').hidden")
        assert await spanish.evaluate("document.getElementById('targets-title').textContent") == (
            "Avance hacia las metas de la Fase III"
        )

        # The milestones reached, newest first, in the programme's words.
        await page.wait_for("!document.getElementById('milestones').hidden")
        milestones = await reached()
        items = await page.wait_for(
            f"""(() => {{
                const items = [...document.querySelectorAll('#milestone-list [data-milestone]')];
                return items.length === {min(8, len(milestones))}
                    && items.map((li) => [li.dataset.milestone, li.textContent]);
            }})()"""
        )
        for (milestone_id, text), milestone in zip(items, milestones, strict=False):
            assert milestone_id == milestone["milestone_id"]
            assert text.startswith(milestone["title"])
        assert unexpected(page.errors) == []


async def test_a_chamber_sees_its_regions_and_a_missing_or_refused_token_asks_for_one(
    tmp_path: Path, browser: Browser
) -> None:
    app = app_on(tmp_path, f"nats://127.0.0.1:{free_port()}")  # fed here, not by NATS
    async with served(app) as server:
        async with app.state.runtime.database.transaction() as conn:
            await project_all(conn, STORY)
            await moved(conn, PROJECTION, [CONSUMER])

        # No token: a form asks for one, and the figures show once it is given.
        page = await browser.new_page(f"{server.url}/")
        assert await page.wait_for("!document.getElementById('auth').hidden")
        assert await page.evaluate("document.getElementById('content').hidden")
        label = await page.evaluate("document.querySelector('label[for=token-input]').textContent")
        assert label == "Token de acceso"
        await page.evaluate(
            f"""document.getElementById('token-input').value = {json.dumps(token("reader"))};
                document.getElementById('auth-form').requestSubmit()"""
        )
        await loaded(page)
        assert value_of(await shown(page), "enterprises_trained") == 5

        # While the projection is rebuilt the API answers 503: the page says so, keeps what it
        # showed, and goes on by itself once the rebuild is done.
        database = app.state.runtime.database
        async with database.transaction() as conn:
            await mark(
                conn, PROJECTION, {CONSUMER: 50}, restarted=True, started_at=dt.datetime.now(dt.UTC)
            )
            await moved(conn, PROJECTION, [CONSUMER])
        notice = await page.wait_for(
            "!document.getElementById('notice').hidden && "
            "document.getElementById('notice').textContent"
        )
        assert "recalculando" in notice
        assert value_of(await shown(page), "enterprises_trained") == 5
        async with database.transaction() as conn:
            await conn.execute(rebuilds.delete())
            await moved(conn, PROJECTION, [CONSUMER])
        await page.wait_for("document.getElementById('notice').hidden")

        # A token the API refuses: asked again, saying why.
        refused = await browser.new_page(f"{server.url}/?token=not-a-token")
        await refused.wait_for("!document.getElementById('auth').hidden")
        reason = await refused.evaluate("document.getElementById('auth-reason').textContent")
        assert "rechazado" in reason
        assert await refused.evaluate("location.search") == ""

        # A chamber of two regions: their figures, never the national ones.
        chamber = token("chamber", regions=["potosi", "la_paz"])
        own = await browser.new_page(f"{server.url}/?token={chamber}")
        await loaded(own)
        options = await own.evaluate(
            "[...document.getElementById('scope').options].map(o => o.value)"
        )
        assert options == ["potosi", "la_paz"]
        potosi = await api_figures(server.url, chamber, region="potosi")
        assert value_of(await shown(own), "enterprises_trained") == potosi["enterprises_trained"]
        regions = await own.evaluate(
            "[...document.querySelectorAll('#region-chart [data-region]')]"
            ".map(g => g.dataset.region)"
        )
        assert regions == ["potosi", "la_paz"]
        await own.evaluate(
            """const scope = document.getElementById('scope');
               scope.value = 'la_paz'; scope.dispatchEvent(new Event('change'))"""
        )
        await own.wait_for(
            """document.querySelector('[data-indicator="enterprises_trained"]').dataset.value
                === '2'"""
        )
        assert "La Paz" in await own.evaluate("document.getElementById('scope-line').textContent")
        assert unexpected(own.errors) == []

        # On a phone: nothing wider than the screen, and every chart says what it shows.
        await own.set_viewport(390, 844, mobile=True)
        await own.wait_for("document.documentElement.scrollWidth <= window.innerWidth")
        charts = await own.evaluate(
            """[...document.querySelectorAll('#content svg')]
                .filter(s => s.closest('[hidden]') === null)
                .map(s => [s.getAttribute('role'), s.querySelector('title').textContent,
                           s.querySelector('desc').textContent])"""
        )
        assert len(charts) == 4
        for role, title, description in charts:
            assert role == "img" and title and description
