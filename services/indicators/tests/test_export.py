"""The indicators as files: `GET /v1/indicators?format=csv|xlsx` holds, for every scope, the
figures the JSON answers, from one moment of the projection, to those allowed to read them."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import re
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import openpyxl
import pytest
from fastapi import FastAPI
from nats.aio.msg import Msg

from score_chassis.consumer import IdempotentConsumer
from score_chassis.view import mark, moved
from score_contracts.envelope import Envelope
from score_contracts.events import (
    CaseStudyPublished,
    Event,
    Improvement,
    VisitCompleted,
    VisitScheduled,
)
from score_contracts.reference import REGIONS
from score_indicators.export import TARGET_COLUMNS, Percent, Table, to_csv, to_xlsx
from score_indicators.indicators import INDICATORS
from score_indicators.main import build_app
from score_indicators.projection import PROJECTION, project_all
from score_indicators.settings import IndicatorsSettings
from score_testing.history import History
from score_testing.nats import free_port
from score_testing.service import TEST_SECRET, bearer, serving
from score_testing.streams import publish_envelopes, wait_for

READER = bearer("reader")
ADMIN = bearer("admin")
SCOPES = ["national", *REGIONS["bo"]]
BEFORE = dt.date(2016, 6, 1)  # Phase II
DURING = dt.date(2018, 6, 1)  # Phase III
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

PERCENTAGES = {
    "women_share_trainers",
    "cost_recovery_pct",
    "cost_recovery_pct_module1",
    "cost_recovery_pct_modules2to5",
}
ADDITIVE = [key for key in INDICATORS if key not in PERCENTAGES and key != "regions_active"]
"""What DOMAIN.md counts per region by where each enterprise or trainer is: the regions' rows
add up to the national one. (A percentage does not add up; `regions_active` is counted.)"""


def story() -> History:
    """Enterprises in four regions, trained before and within Phase III, with fees, a module
    completed, a visit and a case study; trainers of both sexes. Most regions have nothing:
    their cost recovery and share of women are null."""
    h = History()
    a = h.enterprise("la_paz", women=48, men=36, on=BEFORE)
    a1 = h.enrol(a, 1, "direct", "1000", on=BEFORE)
    h.train(a, a1, module=1, on=BEFORE)
    h.pay(a, a1, "500", on=BEFORE)
    h.complete(a, a1, module=1, on=BEFORE)
    a2 = h.enrol(a, 2, "partner", "2000", on=DURING)
    h.train(a, a2, module=2, on=DURING)
    h.pay(a, a2, "2000", on=DURING)
    b = h.enterprise("santa_cruz", women=10, men=90, on=DURING, chamber="CAINCO")
    b1 = h.enrol(b, 1, "partner", "1500", on=DURING)
    h.train(b, b1, module=1, on=DURING)
    h.pay(b, b1, "700", on=DURING)
    c = h.enterprise("cochabamba", on=BEFORE)
    h.enrol(c, 1, "direct", "1000", on=BEFORE)  # enrolled, never trained
    h.enterprise("oruro", on=DURING)  # registered only
    woman = h.trainer("female", "la_paz", on=BEFORE)
    h.certify(woman, on=BEFORE)
    h.certify(h.trainer("male", "santa_cruz", on=DURING), on=DURING)
    h.trainer("female", "tarija", on=DURING)
    visit = {"visit_id": "visit-1", "enterprise_id": b, "trainer_id": woman, "module": 1}
    h.add(VisitScheduled(scheduled_for=DURING, **visit))
    h.add(
        VisitCompleted(
            completed_on=DURING,
            duration_hours="3",  # type: ignore[arg-type]
            improvements=[
                Improvement(area="5S", description="Cutting floor organised"),
                Improvement(area="communication", description="A suggestion box"),
            ],
            **visit,
        )
    )
    h.add(
        CaseStudyPublished(
            enterprise_id=b, title="Textiles", url="https://example.org/t", published_on=DURING
        )
    )
    return h


def settings(tmp_path: Path, **overrides: Any) -> IndicatorsSettings:
    values: dict[str, Any] = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'indicators.db'}",
        "nats_url": f"nats://127.0.0.1:{free_port()}",  # none there: nothing is consumed
        "auth_secret": TEST_SECRET,
        "log_format": "console",
        **overrides,
    }
    return IndicatorsSettings(**values)


async def project(app: FastAPI, envelopes: Sequence[Envelope[Event]]) -> None:
    """Write facts into the app's projection as its consumers would (moving its version)."""
    async with app.state.runtime.database.transaction() as conn:
        await project_all(conn, envelopes)
        await moved(conn, PROJECTION, ["indicators-projection-enrolment"])


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = build_app(settings(tmp_path))
    async with serving(app) as client:
        await project(app, story().envelopes())
        yield client


async def json_indicators(
    api: httpx.AsyncClient, scope: str, phase: str | None = None
) -> dict[str, Any]:
    params = {} if scope == "national" else {"region": scope}
    if phase is not None:
        params["phase"] = phase
    response = await api.get("/v1/indicators", params=params, headers=ADMIN)
    assert response.status_code == 200, response.text
    indicators: dict[str, Any] = response.json()["indicators"]
    return indicators


def parsed_csv(response: httpx.Response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.content.decode("utf-8"), newline="")))


PLAIN_DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?")


def assert_cell_is(cell: str, value: Any) -> None:
    """A CSV cell holds the JSON's figure: empty for null, else the number as a plain decimal."""
    if value is None:
        assert cell == ""
        return
    assert PLAIN_DECIMAL.fullmatch(cell), cell
    assert type(value)(cell) == value


async def export(
    api: httpx.AsyncClient, file_format: str, headers: dict[str, str] = ADMIN, **params: str
) -> httpx.Response:
    return await api.get(
        "/v1/indicators", params={"format": file_format, **params}, headers=headers
    )


def by_scope(rows: list[list[str]]) -> dict[str, dict[str, str]]:
    header, *body = rows
    return {row[0]: dict(zip(header[1:], row[1:], strict=True)) for row in body}


@pytest.mark.parametrize("phase", [None, "phase-3"])
async def test_the_csv_holds_the_json_figures_of_every_scope(
    api: httpx.AsyncClient, phase: str | None
) -> None:
    response = await export(api, "csv", **({"phase": phase} if phase else {}))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    rows = parsed_csv(response)
    assert rows[0] == ["region", *INDICATORS]
    assert [row[0] for row in rows[1:]] == SCOPES
    for scope, cells in by_scope(rows).items():
        figures = await json_indicators(api, scope, phase)
        for key in INDICATORS:
            assert_cell_is(cells[key], figures[key])


async def test_the_csv_is_rfc_4180_with_empty_cells_for_nulls(api: httpx.AsyncClient) -> None:
    content = (await export(api, "csv")).content
    lines = content.split(b"\r\n")
    assert lines[-1] == b""  # every record ends with CRLF, the last one too
    assert len(lines) == 1 + len(SCOPES) + 1
    assert not any(b"\n" in line or b"\r" in line for line in lines)
    potosi = by_scope(parsed_csv(await export(api, "csv")))["potosi"]
    assert potosi["cost_recovery_pct"] == "" and potosi["women_share_trainers"] == ""
    assert potosi["enterprises_registered"] == "0"


async def test_a_phase_counts_its_window_in_the_file(api: httpx.AsyncClient) -> None:
    since_inception = by_scope(parsed_csv(await export(api, "csv")))
    phase = by_scope(parsed_csv(await export(api, "csv", phase="phase-3")))
    assert since_inception["national"]["enterprises_registered"] == "4"
    assert phase["national"]["enterprises_registered"] == "2"  # santa_cruz and oruro
    assert phase["cochabamba"]["enterprises_enrolled"] == "0"
    assert since_inception["cochabamba"]["enterprises_enrolled"] == "1"
    # Within the window: (2000 + 700) / (2000 + 1500); since inception (500 + 2700) / 5500.
    assert phase["national"]["cost_recovery_pct"] == "77.1"
    assert since_inception["national"]["cost_recovery_pct"] == "58.2"


@pytest.mark.parametrize("phase", [None, "phase-3"])
async def test_the_regions_add_up_to_the_national_row(
    api: httpx.AsyncClient, phase: str | None
) -> None:
    scopes = by_scope(parsed_csv(await export(api, "csv", **({"phase": phase} if phase else {}))))
    national = scopes.pop("national")
    for key in ADDITIVE:
        assert int(national[key]) == sum(int(region[key]) for region in scopes.values()), key
    active = [slug for slug, region in scopes.items() if region["regions_active"] == "1"]
    assert int(national["regions_active"]) == len(active)
    assert int(national["enterprises_trained"]) > 0 and int(national["visits_completed"]) > 0


async def test_the_workbook_holds_the_same_table_with_typed_cells(api: httpx.AsyncClient) -> None:
    response = await export(api, "xlsx", phase="phase-3")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == XLSX
    workbook = openpyxl.load_workbook(io.BytesIO(response.content))
    sheet = workbook["indicators"]
    rows = list(sheet.iter_rows())
    assert [cell.value for cell in rows[0]] == ["region", *INDICATORS]
    assert all(cell.font.b for cell in rows[0])
    assert [row[0].value for row in rows[1:]] == SCOPES
    for row in rows[1:]:
        figures = await json_indicators(api, row[0].value, "phase-3")
        for key, cell in zip(INDICATORS, row[1:], strict=True):
            value = figures[key]
            if value is None:
                assert cell.value is None, key
            elif key in PERCENTAGES:
                # Excel's percentages are fractions, shown with one decimal: 77.1 is 0.771
                # (and 100.0 is 1, which reads back as an int: a cell holds a number).
                assert cell.data_type == "n" and round(cell.value * 100, 1) == value, key
                assert cell.number_format == "0.0%"
            else:
                assert type(cell.value) is int and cell.value == value, key
    assert sheet.freeze_panes == "B2"  # the header row and the region column stay in view
    widths = {name: sheet.column_dimensions[name].width for name in ("A", "B")}
    assert widths["A"] >= len("santa_cruz") and widths["B"] >= len("enterprises_registered")


async def json_targets(
    api: httpx.AsyncClient, scope: str, phase: str | None = None, headers: dict[str, str] = ADMIN
) -> dict[str, Any]:
    params = {} if scope == "national" else {"region": scope}
    if phase is not None:
        params["phase"] = phase
    response = await api.get("/v1/targets", params=params, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def assert_target_row(row: Sequence[Any], scope: str, phase: str, target: dict[str, Any]) -> None:
    """A row of the targets' table (as read from a workbook) holds the JSON's target."""
    assert [cell.value for cell in row[:3]] == [phase, scope, target["key"]]
    as_percentage = target["key"] == "cost_recovery_pct"
    for cell, field in zip(row[3:6], ("target", "actual", "percent"), strict=True):
        value = target[field]
        if value is None:
            assert cell.value is None, field
            continue
        assert cell.data_type == "n", field
        if as_percentage or field == "percent":
            assert round(cell.value * 100, 1) == value and cell.number_format == "0.0%", field
        else:
            assert cell.value == value and cell.number_format == "General", field
    assert row[6].data_type == "b" and row[6].value is target["met"]


@pytest.mark.parametrize("phase", [None, "phase-3"])
async def test_the_workbook_has_the_phases_targets_on_a_second_sheet(
    api: httpx.AsyncClient, phase: str | None
) -> None:
    """Within the phase named, or the current one when the indicators are since inception."""
    response = await export(api, "xlsx", **({"phase": phase} if phase else {}))
    workbook = openpyxl.load_workbook(io.BytesIO(response.content))
    assert workbook.sheetnames == ["indicators", "targets"]
    sheet = workbook["targets"]
    header, *rows = list(sheet.iter_rows())
    assert [cell.value for cell in header] == list(TARGET_COLUMNS)
    expected = [
        (scope, body["phase"], target)
        for scope in SCOPES
        for body in [await json_targets(api, scope, phase)]
        for target in body["targets"]
    ]
    assert len(rows) == len(expected) == len(SCOPES) * 7
    for row, (scope, phase_id, target) in zip(rows, expected, strict=True):
        assert_target_row(row, scope, phase_id, target)
    assert {phase_id for _, phase_id, _ in expected} == {"phase-3"}  # the current one, too
    national = {row[2].value: row for row in rows if row[1].value == "national"}
    assert national["new_chambers"][4].value == 1  # CAINCO's first training was in Phase III
    assert sheet.freeze_panes == "B2"


async def test_the_targets_as_a_file_hold_the_json_of_every_scope(api: httpx.AsyncClient) -> None:
    files = {}
    for file_format in ("csv", "xlsx"):
        response = await api.get(
            "/v1/targets", params={"phase": "phase-3", "format": file_format}, headers=READER
        )
        assert response.status_code == 200, response.text
        files[file_format] = response
    assert files["csv"].headers["content-type"] == "text/csv; charset=utf-8"
    assert files["xlsx"].headers["content-type"] == XLSX
    rows = parsed_csv(files["csv"])
    sheet = openpyxl.load_workbook(io.BytesIO(files["xlsx"].content))["targets"]
    cells = list(sheet.iter_rows())
    assert rows[0] == [cell.value for cell in cells[0]] == list(TARGET_COLUMNS)
    expected = [
        (scope, target)
        for scope in SCOPES
        for target in (await json_targets(api, scope, "phase-3"))["targets"]
    ]
    assert len(rows) == len(cells) == 1 + len(expected)
    for row, cell_row, (scope, target) in zip(rows[1:], cells[1:], expected, strict=True):
        assert row[:3] == ["phase-3", scope, target["key"]]
        for cell, field in zip(row[3:6], ("target", "actual", "percent"), strict=True):
            assert_cell_is(cell, target[field])
        assert row[6] == ("true" if target["met"] else "false")
        assert_target_row(cell_row, scope, "phase-3", target)


@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "Etc/GMT+12"])
async def test_the_targets_file_is_named_for_the_phase_and_the_programmes_day(
    tmp_path: Path, zone: str
) -> None:
    async with serving(build_app(settings(tmp_path, timezone=zone))) as api:
        before = dt.datetime.now(ZoneInfo(zone)).date()
        named = await api.get(
            "/v1/targets", params={"phase": "phase-2", "format": "csv"}, headers=READER
        )
        current = await api.get("/v1/targets", params={"format": "xlsx"}, headers=READER)
        after = dt.datetime.now(ZoneInfo(zone)).date()
    assert named.headers["content-disposition"] in {
        f'attachment; filename="score-targets-bo-phase-2-{day}.csv"' for day in (before, after)
    }
    assert current.headers["content-disposition"] in {
        f'attachment; filename="score-targets-bo-phase-3-{day}.xlsx"' for day in (before, after)
    }
    assert parsed_csv(named) == [list(TARGET_COLUMNS)]  # Phase II has no targets


async def test_a_chamber_gets_only_its_own_regions_targets(api: httpx.AsyncClient) -> None:
    chamber = bearer("chamber", regions=["santa_cruz"])
    response = await api.get("/v1/targets", params={"format": "csv"}, headers=chamber)
    assert response.status_code == 200, response.text
    rows = parsed_csv(response)[1:]
    assert {row[1] for row in rows} == {"santa_cruz"} and len(rows) == 7
    own = await json_targets(api, "santa_cruz", headers=chamber)
    assert [row[2] for row in rows] == [target["key"] for target in own["targets"]]
    other = await api.get(
        "/v1/targets", params={"format": "xlsx", "region": "beni"}, headers=chamber
    )
    assert other.status_code == 403


async def test_the_targets_file_refuses_what_the_json_refuses(api: httpx.AsyncClient) -> None:
    assert (await api.get("/v1/targets", params={"format": "csv"})).status_code == 401
    for params, field, rule in (
        ({"format": "ods"}, "format", "unknown-format"),
        ({"format": "csv", "phase": "phase-9"}, "phase", "unknown-phase"),
        ({"format": "csv", "region": "atlantis"}, "region", "unknown-region"),
    ):
        response = await api.get("/v1/targets", params=params, headers=READER)
        assert response.status_code == 422
        [error] = response.json()["errors"]
        assert (error["field"], error["rule"]) == (field, rule)


async def test_json_stays_the_default_answer(api: httpx.AsyncClient) -> None:
    default = await api.get("/v1/indicators", params={"region": "la_paz"}, headers=READER)
    explicit = await api.get(
        "/v1/indicators", params={"region": "la_paz", "format": "json"}, headers=READER
    )
    assert default.headers["content-type"] == explicit.headers["content-type"]
    assert "content-disposition" not in default.headers
    assert {**default.json(), "as_of": None} == {**explicit.json(), "as_of": None}
    assert default.json()["indicators"]["enterprises_trained"] == 1


@pytest.mark.parametrize("file_format", ["csv", "xlsx"])
async def test_a_chamber_gets_only_its_own_regions_rows(
    api: httpx.AsyncClient, file_format: str
) -> None:
    chamber = bearer("chamber", regions=["tarija", "la_paz"])
    response = await export(api, file_format, chamber)
    assert response.status_code == 200, response.text
    if file_format == "csv":
        scopes = [row[0] for row in parsed_csv(response)[1:]]
    else:
        sheet = openpyxl.load_workbook(io.BytesIO(response.content))["indicators"]
        scopes = [row[0] for row in sheet.iter_rows(min_row=2, values_only=True)]
    assert scopes == ["la_paz", "tarija"]  # the country's order; no national row


async def test_a_chamber_naming_a_region_gets_that_row_or_403(api: httpx.AsyncClient) -> None:
    chamber = bearer("chamber", regions=["tarija", "la_paz"])
    own = await export(api, "csv", chamber, region="tarija")
    assert [row[0] for row in parsed_csv(own)[1:]] == ["tarija"]
    other = await export(api, "csv", chamber, region="beni")
    assert other.status_code == 403
    assert other.headers["content-type"] == "application/problem+json"
    elsewhere = bearer("chamber", regions=["cusco"])  # none of Bolivia's: nothing to read
    assert (await export(api, "xlsx", elsewhere)).status_code == 403


async def test_no_token_is_401(api: httpx.AsyncClient) -> None:
    for file_format in ("csv", "xlsx", "pdf"):
        response = await api.get("/v1/indicators", params={"format": file_format})
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("file_format", ["pdf", "CSV", "", "x" * 300])
async def test_a_bad_format_is_422_naming_the_query_parameter(
    api: httpx.AsyncClient, file_format: str
) -> None:
    response = await export(api, file_format)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    [error] = response.json()["errors"]
    assert (error["field"], error["location"], error["rule"]) == (
        "format",
        "query",
        "unknown-format",
    )
    assert "one of: json, csv, xlsx" in error["reason"]
    assert len(error["reason"]) < 120  # a long value is not echoed back whole


async def test_an_unknown_phase_or_region_is_422_in_a_file_too(api: httpx.AsyncClient) -> None:
    for params, field in (({"phase": "phase-9"}, "phase"), ({"region": "atlantis"}, "region")):
        response = await export(api, "csv", **params)
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == field


@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "Etc/GMT+12"])
async def test_the_file_is_named_for_the_phase_and_the_programmes_day(
    tmp_path: Path, zone: str
) -> None:
    # UTC+14 and UTC-12: whatever the hour, one of them is not on UTC's date.
    async with serving(build_app(settings(tmp_path, timezone=zone))) as api:
        before = dt.datetime.now(ZoneInfo(zone)).date()
        csv_file = await export(api, "csv")
        xlsx_file = await export(api, "xlsx", phase="phase-3")
        after = dt.datetime.now(ZoneInfo(zone)).date()
    names = {f'attachment; filename="score-indicators-bo-all-{day}.csv"' for day in (before, after)}
    assert csv_file.headers["content-disposition"] in names
    names = {
        f'attachment; filename="score-indicators-bo-phase-3-{day}.xlsx"' for day in (before, after)
    }
    assert xlsx_file.headers["content-disposition"] in names


async def test_every_row_of_a_file_is_of_one_moment_while_events_arrive(
    tmp_path: Path, database_url: str
) -> None:
    """Enterprises are trained, one transaction each, while files are asked for: a file whose
    scopes were read at different moments would not add up."""
    app = build_app(settings(tmp_path, database_url=database_url))
    async with serving(app) as api:
        writing = asyncio.create_task(train_one_enterprise_after_another(app, 60))
        files = []
        while not writing.done():
            indicators = await export(api, "csv")
            targets = await api.get("/v1/targets", params={"format": "csv"}, headers=ADMIN)
            files.append((parsed_csv(indicators), parsed_csv(targets)))
        await writing  # before any assertion, which would leave it writing
    trained_seen, direct_seen = set(), set()
    for indicators, targets in files:
        scopes = by_scope(indicators)
        national = int(scopes.pop("national")["enterprises_trained"])
        assert national == sum(int(region["enterprises_trained"]) for region in scopes.values())
        trained_seen.add(national)
        direct = {
            row[1]: int(row[4]) for row in targets[1:] if row[2] == "enterprises_trained_direct"
        }
        assert direct.pop("national") == sum(direct.values())
        direct_seen.add(sum(direct.values()))
    # The files were read while the history grew.
    assert len(trained_seen) > 2 and len(direct_seen) > 2


async def train_one_enterprise_after_another(app: FastAPI, how_many: int) -> None:
    h = History()
    for n in range(how_many):
        start = len(h.events)
        enterprise = h.enterprise(REGIONS["bo"][n % len(REGIONS["bo"])], on=DURING)
        h.train(enterprise, h.enrol(enterprise, 1, "direct", "100", on=DURING), on=DURING)
        await project(app, h.envelopes()[start:])
        await asyncio.sleep(0.002)


# The file writers, on tables of any content.


def test_csv_numbers_are_plain_decimals_and_text_is_quoted_per_rfc_4180() -> None:
    table = Table(
        title="t",
        columns=["name", "count", "share", "big", "met", "none"],
        rows=[['Cámara "Sur", Oruro', 1200, Percent(41.9), 1e16, True, None]],
    )
    assert to_csv(table).decode("utf-8") == (
        "name,count,share,big,met,none\r\n"
        '"Cámara ""Sur"", Oruro",1200,41.9,10000000000000000,true,\r\n'
    )


def test_a_workbook_writes_text_as_text_never_as_a_formula() -> None:
    table = Table(title="t", columns=["text", "met"], rows=[["=1+1", False], ["@SUM(A1)", True]])
    sheet = openpyxl.load_workbook(io.BytesIO(to_xlsx([table])))["t"]
    cells = [(cell.value, cell.data_type) for row in sheet.iter_rows(min_row=2) for cell in row]
    assert cells == [("=1+1", "s"), (False, "b"), ("@SUM(A1)", "s"), (True, "b")]


# While the projection is rebuilt.

REPLAY = "/v1/ops/replay/projection"


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """Open, until cleared: the batches of the consumers building the projection beside the
    served one wait for it before their transaction, so a rebuild cannot finish meanwhile (as
    in test_replay.py)."""
    gate = asyncio.Event()
    gate.set()
    handle_batch = IdempotentConsumer.handle_batch

    async def gated(consumer: IdempotentConsumer, messages: Sequence[Msg]) -> None:
        if consumer.name.endswith("-beside"):
            await gate.wait()
        await handle_batch(consumer, messages)

    monkeypatch.setattr(IdempotentConsumer, "handle_batch", gated)
    return gate


@pytest.mark.nats
async def test_while_the_projection_is_rebuilt_the_files_hold_the_old_figures_and_then_the_same(
    tmp_path: Path, nats_url: str, gate: asyncio.Event
) -> None:
    await publish(nats_url, story())
    app = build_app(settings(tmp_path, nats_url=nats_url, consumer_ack_wait_seconds=2))
    async with serving(app) as api:

        async def all_counted() -> httpx.Response | None:
            response = await export(api, "csv")
            if response.status_code != 200:
                return None
            national = by_scope(parsed_csv(response))["national"]
            return (
                response
                if national["enterprises_registered"] == "4"
                and (national["visits_completed"] == "1")
                else None
            )

        live = await wait_for(all_counted, within=20)
        targets = await api.get("/v1/targets", params={"format": "csv"}, headers=ADMIN)
        gate.clear()  # the rebuild cannot get far until the gate opens
        assert (await api.post(REPLAY, headers=ADMIN)).status_code == 202

        async def rebuilding() -> dict[str, Any] | None:
            progress: dict[str, Any] = (await api.get(REPLAY, headers=ADMIN)).json()
            return progress if progress["target"] is not None else None

        assert (await wait_for(rebuilding, within=10))["state"] == "rebuilding"
        assert (await export(api, "csv")).content == live.content
        assert (await export(api, "xlsx")).status_code == 200
        during = await api.get("/v1/targets", params={"format": "csv"}, headers=ADMIN)
        assert during.content == targets.content

        gate.set()
        await wait_for(lambda: _built(api), within=30)
        assert (await export(api, "csv")).content == live.content


async def _built(api: httpx.AsyncClient) -> dict[str, Any] | None:
    progress: dict[str, Any] = (await api.get(REPLAY, headers=ADMIN)).json()
    return progress if progress["state"] == "built" else None


@pytest.mark.nats
async def test_while_a_fresh_database_catches_up_a_file_is_503(
    tmp_path: Path, nats_url: str
) -> None:
    app = build_app(settings(tmp_path, nats_url=nats_url))
    async with serving(app) as api:
        # As a consumer reading a stream of history from its start into an empty view marks it.
        async with app.state.runtime.database.transaction() as conn:
            await mark(
                conn,
                PROJECTION,
                {"indicators-projection-enrolment": 10},
                restarted=True,
                started_at=dt.datetime.now(dt.UTC),
            )
        targets = await api.get("/v1/targets", params={"format": "xlsx"}, headers=ADMIN)
        for response in (await export(api, "csv"), await export(api, "xlsx"), targets):
            assert response.status_code == 503
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["type"].endswith("/problems/rebuilding")
            assert int(response.headers["retry-after"]) > 0
            assert "content-disposition" not in response.headers


async def publish(nats_url: str, history: History) -> None:
    await publish_envelopes(nats_url, history.envelopes(), region="santa_cruz")
