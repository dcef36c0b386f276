"""`score dead-letters` against a running visits service (uvicorn, a real nats-server, SQLite):
a table for people and JSON for scripts, retries that apply the event or say why not, and the
exit codes a script relies on."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import pytest
import sqlalchemy as sa

from score_chassis import dead_letters
from score_chassis.database import Database
from score_chassis.jetstream import ensure_stream
from score_cli import doctor
from score_cli.doctor import WARN
from score_cli.main import main
from score_contracts.subjects import STREAMS
from score_testing.browser import served
from score_testing.service import TEST_SECRET, bearer
from score_testing.stores import kept_dead_letter
from score_testing.streams import wait_for
from score_visits.main import build_app
from score_visits.settings import VisitsSettings
from score_visits.tables import enterprises
from score_visits.views import DURABLE

pytestmark = pytest.mark.nats

TOKEN = bearer("admin")["Authorization"].removeprefix("Bearer ")


@dataclass
class Visits:
    url: str
    database: Database

    def args(self, *action: str) -> list[str]:
        return ["dead-letters", *action, "--url", self.url, "--token", TOKEN, "--service", "visits"]

    async def enterprise_ids(self) -> list[str]:
        async with self.database.transaction(write=False) as conn:
            return list((await conn.execute(sa.select(enterprises.c.enterprise_id))).scalars())


@pytest.fixture
async def visits(tmp_path: Path, nats_url: str) -> AsyncIterator[Visits]:
    app = build_app(
        VisitsSettings(
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'visits.db'}",
            nats_url=nats_url,
            auth_secret=TEST_SECRET,
            log_format="console",
        )
    )
    async with served(app) as server:
        # A consumer stopped while still setting itself up on NATS can miss the cancellation
        # (nats-py's requests wait with asyncio.wait_for): let it be reading first.
        await wait_for(lambda: app.state.runtime.consumer(DURABLE).reading, within=10)
        yield Visits(server.url, app.state.runtime.database)


async def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = await asyncio.to_thread(main, list(argv))
    said = capsys.readouterr()
    return code, said.out, said.err


async def dead_letters_of(visits: Visits) -> list[dead_letters.DeadLetter]:
    async with visits.database.transaction(write=False) as conn:
        return await dead_letters.latest(conn)


async def a_poison_message(nats_url: str) -> None:
    """What visits' consumer cannot parse, on enrolment's stream: dead-lettered at once."""
    client = await nats.connect(nats_url)
    try:
        js = client.jetstream()
        await ensure_stream(js, STREAMS["enrolment"])
        await js.publish(
            "score.bo.oruro.enrolment.enterprise_registered.v1",
            b"{not json",
            headers={"Nats-Msg-Id": "poison-1"},
        )
    finally:
        await client.close()


async def test_list_shows_a_table_and_json_and_retry_applies_the_event(
    visits: Visits, nats_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    await a_poison_message(nats_url)
    [poison] = await wait_for(lambda: dead_letters_of(visits), within=10)
    good = await kept_dead_letter(visits.database, consumer=DURABLE)

    code, out, _ = await run(capsys, *visits.args("list"))
    assert code == 0
    header, *lines = out.splitlines()
    assert header.split() == ["SERVICE", "ID", "CONSUMER", "EVENT", "DELIVERIES", "ERROR", "WHEN"]
    assert lines[0].split()[:5] == [
        "visits",
        str(good),
        DURABLE,
        "enrolment.enterprise_registered.v1",
        "5",
    ]
    assert lines[1].split()[:4] == ["visits", str(poison.id), DURABLE, "(unreadable)"]
    assert "unparseable" in lines[1]

    code, out, _ = await run(capsys, *visits.args("list", "--json"))
    assert code == 0
    listed: list[dict[str, Any]] = json.loads(out)
    assert [(item["service"], item["id"]) for item in listed] == [
        ("visits", good),
        ("visits", poison.id),
    ]
    assert "Illimani" not in out  # no payload in a listing

    code, out, _ = await run(capsys, *visits.args("retry", str(good)))
    assert code == 0, out
    assert f"visits {good}: retried" in out
    assert await visits.enterprise_ids() == ["ent-dead-1"]
    code, out, _ = await run(capsys, *visits.args("list", "--json"))
    assert [item["id"] for item in json.loads(out)] == [poison.id]


async def test_a_retry_that_cannot_be_done_exits_1_and_discard_removes_it(
    visits: Visits, nats_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    await a_poison_message(nats_url)
    [poison] = await wait_for(lambda: dead_letters_of(visits), within=10)
    orphan = await kept_dead_letter(visits.database, consumer="visits-retired-consumer")

    code, out, _ = await run(capsys, *visits.args("retry", "--all", "--json"))
    assert code == 1
    outcomes = {o["id"]: o for o in json.loads(out)}
    assert outcomes[poison.id]["outcome"] == "refused"
    assert "discard it" in outcomes[poison.id]["detail"]
    assert outcomes[orphan]["outcome"] == "refused"
    assert "'visits-retired-consumer'" in outcomes[orphan]["detail"]

    code, out, _ = await run(capsys, *visits.args("retry", "999"))
    assert code == 1 and "visits 999: not found: no dead letter with id 999" in out

    code, out, _ = await run(capsys, *visits.args("discard", str(poison.id), str(orphan)))
    assert code == 0 and f"visits {orphan}: discarded" in out
    assert await dead_letters_of(visits) == []
    code, _, err = await run(capsys, *visits.args("discard", str(orphan)))
    assert code == 1 and "no dead letter" in err


async def test_usage_and_connection_problems_exit_2(
    visits: Visits, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = await run(capsys, *visits.args("retry"))
    assert code == 2 and "ids or --all" in err
    code, _, err = await run(capsys, "dead-letters", "list", "--data-dir", str(tmp_path))
    assert code == 2 and "is `score up` running?" in err
    code, _, err = await run(
        capsys, "dead-letters", "list", "--url", "http://127.0.0.1:9", "--token", TOKEN
    )
    assert code == 2 and "did not answer" in err
    reader = bearer("reader")["Authorization"].removeprefix("Bearer ")
    code, _, err = await run(capsys, "dead-letters", "list", "--url", visits.url, "--token", reader)
    assert code == 2 and "refused the token (403)" in err


async def test_doctor_says_how_many_a_service_has_and_what_to_run(
    visits: Visits, tmp_path: Path
) -> None:
    await kept_dead_letter(visits.database, consumer=DURABLE)
    await kept_dead_letter(visits.database, consumer=DURABLE)
    findings, _ = await asyncio.to_thread(doctor._service, "visits", visits.url, tmp_path)
    command = f"score dead-letters list --service visits --data-dir {tmp_path}"
    assert (WARN, f"visits: 2 dead letters (what it gave up on): run `{command}`") in findings
