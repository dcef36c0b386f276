"""The endpoints the dashboard reads besides the indicators: its page and files, the phases,
the months of training, and the stream of changes."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from score_chassis.view import mark, moved
from score_contracts.envelope import Envelope
from score_contracts.events import (
    EnterpriseEnrolled,
    EnterpriseRegistered,
    Event,
    Headcount,
    ParticipantsTrained,
)
from score_contracts.examples import example, example_envelope
from score_indicators.main import build_app
from score_indicators.milestones import reached
from score_indicators.projection import PROJECTION, project_all
from score_indicators.settings import IndicatorsSettings
from score_testing.browser import Served, served
from score_testing.nats import free_port
from score_testing.service import TEST_SECRET, bearer, serving
from score_testing.streams import wait_for

ADMIN = bearer("admin")
READER = bearer("reader")
CONSUMER = "indicators-projection-enrolment"


def app_on(database_url: str) -> FastAPI:
    """The indicators' app with no NATS to reach: the projection is fed by the test."""
    return build_app(
        IndicatorsSettings(
            database_url=database_url,
            nats_url=f"nats://127.0.0.1:{free_port()}",
            auth_secret=TEST_SECRET,
            log_format="console",
        )
    )


@pytest.fixture
def app(tmp_path: Path) -> FastAPI:
    return app_on(f"sqlite+aiosqlite:///{tmp_path / 'indicators.db'}")


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(app) as c:
        yield c


@pytest.fixture
def counting_app(database_url: str) -> FastAPI:
    """The app on SQLite and on PostgreSQL, for what is counted."""
    return app_on(database_url)


@pytest.fixture
async def counting(counting_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(counting_app) as c:
        yield c


def trained(
    n: int,
    region: str,
    *trainings: tuple[dt.date, int],
    delivery: str = "direct",
) -> list[Envelope[Event]]:
    """Enterprise `n` registered in `region`, enrolled, and trained on each (date, managers
    and workers) given: its events as the enrolment stream carries them."""
    enterprise, enrolment = f"ent-{n:04}", f"enr-{n:04}"
    events: list[Event] = [
        example(EnterpriseRegistered).model_copy(
            update={"enterprise_id": enterprise, "region": region}
        ),
        example(EnterpriseEnrolled).model_copy(
            update={"enterprise_id": enterprise, "enrolment_id": enrolment, "delivery": delivery}
        ),
    ]
    for day, people in trainings:
        events.append(
            example(ParticipantsTrained).model_copy(
                update={
                    "enterprise_id": enterprise,
                    "enrolment_id": enrolment,
                    "trained_on": day,
                    "managers": Headcount(women=people // 2, men=0),
                    "workers": Headcount(women=0, men=people - people // 2),
                }
            )
        )
    return [example_envelope(event, stream_version=v) for v, event in enumerate(events, 1)]


async def counted(app: FastAPI, envelopes: Iterable[Envelope[Event]]) -> None:
    """The events applied to the projection as its consumer would: in one transaction that
    moves the projection's version."""
    async with app.state.runtime.database.transaction() as conn:
        await project_all(conn, list(envelopes))
        await moved(conn, PROJECTION, [CONSUMER])


STORY = [
    # Two trainings of one enterprise, in March and in May 2018: it counts in March only.
    *trained(1, "la_paz", (dt.date(2018, 3, 10), 4), (dt.date(2018, 5, 2), 6)),
    *trained(2, "la_paz", (dt.date(2018, 3, 28), 5)),
    *trained(3, "santa_cruz", (dt.date(2016, 12, 1), 3), delivery="partner"),
    *trained(4, "potosi", (dt.date(2019, 11, 30), 7), (dt.date(2019, 12, 1), 2)),
]


# ---- The page


async def test_the_page_needs_no_token_and_allows_only_its_own_files(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in policy and "http" not in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-store"  # its address may hold the token

    html = response.text
    assert '<html lang="es">' in html
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, re.S)
    assert scripts == [(' src="/dashboard/dashboard.js" defer', "")]  # no inline script
    assert not re.search(r"\son[a-z]+\s*=", html)  # no inline handlers
    assert not re.search(r"\sstyle\s*=", html)  # no inline styles
    assert not re.search(r"""(src|href)="(https?:)?//""", html)  # nothing from elsewhere


async def test_the_page_in_english_says_so_and_another_language_is_422(
    client: httpx.AsyncClient,
) -> None:
    english = await client.get("/", params={"lang": "en"})
    assert english.status_code == 200
    assert '<html lang="en">' in english.text
    french = await client.get("/", params={"lang": "fr"})
    assert french.status_code == 422
    assert french.json()["errors"][0]["field"] == "lang"


@pytest.mark.parametrize(
    ("asset", "media_type"),
    [("dashboard.js", "text/javascript"), ("dashboard.css", "text/css")],
)
async def test_the_page_files_are_served_with_their_types(
    client: httpx.AsyncClient, asset: str, media_type: str
) -> None:
    response = await client.get(f"/dashboard/{asset}")
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == media_type
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.content


@pytest.mark.parametrize("asset", ["index.html", "..%2Fapi.py", "nothing.js", "%2E%2E%2Fmain.py"])
async def test_nothing_else_of_the_package_is_served(client: httpx.AsyncClient, asset: str) -> None:
    assert (await client.get(f"/dashboard/{asset}")).status_code == 404


def test_the_page_files_are_in_the_package() -> None:
    # The wheel holds every file under src/score_indicators (hatchling's `packages`); these
    # are the ones the page needs.
    from score_indicators import dashboard

    assert {path.name for path in dashboard.ASSETS.iterdir()} >= {
        "index.html",
        *dashboard.ASSET_TYPES,
    }


# ---- Phases


async def test_the_phases_are_listed_with_their_targets_and_the_current_one(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.get("/v1/phases")).status_code == 401
    response = await client.get("/v1/phases", headers=bearer("chamber", regions=["potosi"]))
    assert response.status_code == 200
    body = response.json()
    # The shipped programme ends with Phase III, in 2019: it is the current one since.
    assert body["current"] == "phase-3"
    phases = {phase["id"]: phase for phase in body["phases"]}
    assert list(phases) == ["phase-2", "phase-3"]
    assert phases["phase-3"]["current"] and not phases["phase-2"]["current"]
    assert phases["phase-3"]["starts_on"] == "2017-11-01"
    assert phases["phase-3"]["targets"]["enterprises_trained_direct"] == 40
    # The phase the targets are of when none is named.
    targets = await client.get("/v1/targets", headers=READER)
    assert targets.status_code == 200, targets.text
    assert targets.json()["phase"] == body["current"]


# ---- Months


async def monthly(client: httpx.AsyncClient, **params: str) -> dict[str, Any]:
    response = await client.get("/v1/indicators/monthly", params=params, headers=ADMIN)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def indicators(client: httpx.AsyncClient, **params: str) -> dict[str, Any]:
    response = await client.get("/v1/indicators", params=params, headers=ADMIN)
    assert response.status_code == 200, response.text
    values: dict[str, Any] = response.json()["indicators"]
    return values


async def test_the_months_count_first_trainings_and_participants_by_date(
    counting_app: FastAPI, counting: httpx.AsyncClient
) -> None:
    await counted(counting_app, STORY)
    body = await monthly(counting)
    assert (body["country"], body["region"], body["phase"]) == ("bo", None, None)
    months = {
        month["month"]: (month["enterprises_trained"], month["participants_trained"])
        for month in body["months"]
    }
    # From the first training to the last, every month, quiet ones at zero.
    assert list(months)[0] == "2016-12" and list(months)[-1] == "2019-12"
    assert len(months) == 37
    assert months["2017-06"] == (0, 0)
    assert months["2018-03"] == (2, 9)
    # Trained again in May: its participants count then, the enterprise does not.
    assert months["2018-05"] == (0, 6)
    to_date = {month["month"]: month for month in body["months"]}
    assert to_date["2018-05"]["enterprises_trained_to_date"] == 3
    assert to_date["2019-12"]["enterprises_trained_to_date"] == 4
    assert to_date["2019-12"]["participants_trained_to_date"] == 27


@pytest.mark.parametrize(
    "scope",
    [{}, {"region": "la_paz"}, {"region": "potosi"}, {"phase": "phase-3"}, {"region": "beni"}],
    ids=["national", "la_paz", "potosi", "phase-3", "beni"],
)
async def test_the_months_add_up_to_the_indicators_of_the_scope(
    counting_app: FastAPI, counting: httpx.AsyncClient, scope: dict[str, str]
) -> None:
    await counted(counting_app, STORY)
    months = (await monthly(counting, **scope))["months"]
    figures = await indicators(counting, **scope)
    assert sum(m["enterprises_trained"] for m in months) == figures["enterprises_trained"]
    assert sum(m["participants_trained"] for m in months) == figures["participants_trained"]
    if months:
        assert months[-1]["enterprises_trained_to_date"] == figures["enterprises_trained"]
        assert months[-1]["participants_trained_to_date"] == figures["participants_trained"]
    else:
        assert figures["enterprises_trained"] == 0


async def test_within_a_phase_an_enterprise_counts_in_its_first_month_in_the_window(
    counting_app: FastAPI, counting: httpx.AsyncClient
) -> None:
    await counted(counting_app, STORY)
    months = {m["month"]: m for m in (await monthly(counting, phase="phase-3"))["months"]}
    # Enterprise 4 trained on Phase III's last day and again the day after: only the first
    # is in the window. Enterprise 3 trained before the window does not count at all.
    assert list(months)[0] == "2018-03" and list(months)[-1] == "2019-11"
    assert months["2019-11"]["enterprises_trained"] == 1
    assert months["2019-11"]["participants_trained"] == 7


async def test_the_months_follow_new_events(
    counting_app: FastAPI, counting: httpx.AsyncClient
) -> None:
    assert (await monthly(counting))["months"] == []
    await counted(counting_app, trained(1, "oruro", (dt.date(2020, 2, 3), 4)))
    assert [m["month"] for m in (await monthly(counting))["months"]] == ["2020-02"]
    await counted(counting_app, trained(2, "oruro", (dt.date(2020, 4, 3), 4)))
    months = (await monthly(counting))["months"]
    assert [m["month"] for m in months] == ["2020-02", "2020-03", "2020-04"]
    assert months[-1]["enterprises_trained_to_date"] == 2


async def test_no_token_is_401_for_the_months(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/indicators/monthly")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    bad = await client.get("/v1/indicators/monthly", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401


async def test_a_chamber_reads_the_months_of_its_own_regions_only(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await counted(app, STORY)
    chamber = bearer("chamber", regions=["potosi"])
    own = await client.get("/v1/indicators/monthly", params={"region": "potosi"}, headers=chamber)
    assert own.status_code == 200
    assert own.json()["months"][-1]["enterprises_trained_to_date"] == 1
    other = await client.get("/v1/indicators/monthly", params={"region": "la_paz"}, headers=chamber)
    assert other.status_code == 403
    national = await client.get("/v1/indicators/monthly", headers=chamber)
    assert national.status_code == 403


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"phase": "phase-9"}, "phase"),
        ({"region": "atlantis"}, "region"),
        ({"country": "xx"}, "country"),
    ],
)
async def test_an_unknown_scope_of_the_months_is_422_naming_it(
    client: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    response = await client.get("/v1/indicators/monthly", params=params, headers=READER)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == field


async def test_while_the_projection_is_rebuilt_the_months_answer_503(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await counted(app, STORY)
    assert (await monthly(client))["months"]
    async with app.state.runtime.database.transaction() as conn:
        await mark(
            conn,
            PROJECTION,
            {CONSUMER: 50},
            restarted=True,
            started_at=dt.datetime.now(dt.UTC),
        )
    response = await client.get("/v1/indicators/monthly", headers=ADMIN)
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/problems/rebuilding")
    assert int(response.headers["Retry-After"]) > 0


# ---- Changes


async def events_of(response: httpx.Response) -> AsyncIterator[tuple[str, str]]:
    """Each server-sent event of a stream as (event, data); a comment as ("", text)."""
    name, data = "message", ""
    async for line in response.aiter_lines():
        if line.startswith(":"):
            yield "", line[1:].strip()
        elif line.startswith("event:"):
            name = line.removeprefix("event:").strip()
        elif line.startswith("data:"):
            data += line.removeprefix("data:").strip()
        elif line == "" and data:
            yield name, data
            name, data = "message", ""


async def next_event(events: AsyncIterator[tuple[str, str]], *, within: float = 3.0) -> Any:
    async with asyncio.timeout(within):
        return await anext(events)


CHANGES = "/v1/indicators/changes"


async def test_no_token_is_401_for_the_changes(client: httpx.AsyncClient) -> None:
    response = await client.get(CHANGES)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


async def test_the_changes_say_at_once_and_whenever_events_are_counted(app: FastAPI) -> None:
    async with served(app) as server, httpx.AsyncClient(base_url=server.url) as http:
        async with http.stream("GET", CHANGES, headers=bearer("chamber", regions=["beni"])) as s:
            assert s.status_code == 200
            assert s.headers["content-type"].startswith("text/event-stream")
            assert s.headers["cache-control"] == "no-cache"
            events = events_of(s)
            name, data = await next_event(events)
            assert name == "changed"
            await counted(app, trained(1, "beni", (dt.date(2020, 1, 6), 3)))
            name, later = await next_event(events, within=2)
            assert name == "changed" and later != data
            await counted(app, trained(2, "beni", (dt.date(2020, 1, 7), 3)))
            assert (await next_event(events, within=2))[1] != later


async def test_a_milestone_recorded_is_a_change_too(app: FastAPI) -> None:
    # The milestone watch records a milestone a moment after the figures that reached it,
    # without moving the projection: the page must hear of it all the same.
    async with served(app) as server, httpx.AsyncClient(base_url=server.url) as http:
        async with http.stream("GET", CHANGES, headers=READER) as stream:
            events = events_of(stream)
            _, before = await next_event(events)
            async with app.state.runtime.database.transaction() as conn:
                await conn.execute(
                    reached.insert().values(
                        milestone_id="01620b0f-b0ec-78db-b31f-de5083538df9",
                        milestone="region-first-trained-enterprise",
                        indicator="enterprises_trained",
                        scope="beni",
                        threshold=1,
                        value=1,
                        phase=None,
                        reached_at=dt.datetime.now(dt.UTC),
                    )
                )
            name, after = await next_event(events, within=2)
            assert name == "changed" and after != before


async def test_one_poller_feeds_every_listener_and_stops_when_none_is_left(
    app: FastAPI,
) -> None:
    changes = app.state.changes
    async with served(app) as server, httpx.AsyncClient(base_url=server.url) as http:
        async with (
            http.stream("GET", CHANGES, headers=READER) as first,
            http.stream("GET", CHANGES, headers=ADMIN) as second,
            http.stream("GET", CHANGES, headers=READER) as third,
        ):
            streams = [events_of(s) for s in (first, second, third)]
            for events in streams:
                assert (await next_event(events))[0] == "changed"
            assert changes.listeners == 3
            assert changes.pollers_started == 1
            await counted(app, trained(1, "beni", (dt.date(2020, 1, 6), 3)))
            for events in streams:
                assert (await next_event(events, within=2))[0] == "changed"
        # The poller ends at its next tick with nobody listening.
        await wait_for(lambda: not changes.listeners and changes._poller.done(), within=3)


async def test_a_quiet_stream_sends_heartbeats(app: FastAPI) -> None:
    app.state.changes.heartbeat_seconds = 0.2
    async with served(app) as server, httpx.AsyncClient(base_url=server.url) as http:
        async with http.stream("GET", CHANGES, headers=READER) as stream:
            events = events_of(stream)
            assert (await next_event(events))[0] == "changed"
            assert await next_event(events, within=2) == ("", "keep-alive")


async def test_the_streams_end_when_the_server_stops(app: FastAPI) -> None:
    server: Served
    async with served(app) as server, httpx.AsyncClient(base_url=server.url) as http:
        async with http.stream("GET", CHANGES, headers=READER) as stream:
            events = events_of(stream)
            assert (await next_event(events))[0] == "changed"
            server.stop()  # as SIGTERM does: uvicorn waits for open responses to end
            async with asyncio.timeout(3):
                rest = [event async for event in events]
            assert all(name != "changed" for name, _ in rest)
    # `served` waited for the server itself to finish, within its bound.
    assert server.server.started and app.state.changes.listeners == 0
