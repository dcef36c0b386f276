"""`--json` on the operator commands a script drives: stdout is one JSON document and nothing
else, holding what the text says, with the same exit code; a progress bar is drawn on a
terminal only, never into a pipe."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from score_chassis.database import Database
from score_chassis.tokens import TokenAuthority
from score_cli.datadir import auth_secret, write_system
from score_cli.main import main
from score_cli.replay import ProgressBar
from score_cli.republish import _republish
from score_testing.browser import served
from score_testing.service import TEST_SECRET, bearer
from score_testing.stores import kept_dead_letter, stored_trainers
from score_testing.streams import wait_for
from score_visits.main import build_app
from score_visits.settings import VisitsSettings
from score_visits.views import DURABLE

pytestmark = pytest.mark.nats

TOKEN = bearer("admin")["Authorization"].removeprefix("Bearer ")


async def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    """The command's exit code, its stdout parsed as JSON (which it must be, whole), stderr."""
    code = await asyncio.to_thread(main, list(argv))
    said = capsys.readouterr()
    return code, json.loads(said.out), said.err


@pytest.fixture
async def visits(tmp_path: Path, nats_url: str) -> AsyncIterator[tuple[str, Database]]:
    """A visits service on SQLite and the test's nats-server: its URL and database."""
    app = build_app(
        VisitsSettings(
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'visits.db'}",
            nats_url=nats_url,
            auth_secret=TEST_SECRET,
            log_format="console",
        )
    )
    async with served(app) as server:
        await wait_for(lambda: app.state.runtime.consumer(DURABLE).reading, within=10)
        yield server.url, app.state.runtime.database


def test_tokens_create_prints_the_token_and_what_it_carries(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["tokens", "create", "--role", "chamber", "--region", "oruro", "--ttl", "12h",
         "--subject", "cainco", "--data-dir", str(tmp_path), "--json"]
    )  # fmt: skip
    body = json.loads(capsys.readouterr().out)
    assert code == 0
    claims = TokenAuthority(auth_secret(tmp_path)).verify(body["token"])
    assert body["id"] == claims.token_id
    assert (body["role"], body["regions"], body["subject"]) == ("chamber", ["oruro"], "cainco")
    expires = dt.datetime.fromisoformat(body["expires_at"])
    assert dt.timedelta(hours=11) < expires - dt.datetime.now(dt.UTC) <= dt.timedelta(hours=12)


async def test_tokens_revoke_and_list_the_revoked(
    tmp_path: Path, nats_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    where = ["--data-dir", str(tmp_path), "--nats-url", nats_url, "--json"]
    code, listed, _ = await run(capsys, "tokens", "list", *where)
    assert (code, listed) == (0, [])  # nothing revoked yet: no bucket either
    first = TokenAuthority(auth_secret(tmp_path)).issue("staff")
    code, revoked, _ = await run(capsys, "tokens", "revoke", first, *where)
    assert code == 0
    first_id = TokenAuthority(auth_secret(tmp_path)).verify(first).token_id
    assert revoked == {"revoked": first_id}
    code, _, _ = await run(capsys, "tokens", "revoke", "a-token-id-only", *where)
    code, listed, _ = await run(capsys, "tokens", "list", *where)
    assert code == 0
    assert [entry["id"] for entry in listed] == [first_id, "a-token-id-only"]
    assert all(dt.datetime.fromisoformat(entry["revoked_at"]) for entry in listed)


async def test_doctor_gives_its_findings_and_the_same_exit_code(
    tmp_path: Path,
    nats_url: str,
    visits: tuple[str, Database],
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, nothing, _ = await run(capsys, "doctor", "--data-dir", str(tmp_path), "--json")
    assert code == 1 and nothing["healthy"] is False
    assert nothing["findings"][0]["level"] == "FAIL"
    assert "nothing is running" in nothing["findings"][0]["message"]

    url, _ = visits
    write_system(tmp_path, nats_url=nats_url, services={"visits": url})
    code, report, _ = await run(capsys, "doctor", "--data-dir", str(tmp_path), "--json")
    assert code == 0 and report["healthy"] is True
    messages = {finding["message"]: finding["level"] for finding in report["findings"]}
    assert messages[f"visits: ready at {url}"] == "ok"
    assert messages[f"NATS: reachable at {nats_url}"] == "ok"


async def test_replay_gives_the_outcome(
    visits: tuple[str, Database], capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = visits
    code, outcome, err = await run(
        capsys, "replay", "visits-views", "--url", url, "--token", TOKEN, "--json"
    )
    assert code == 0
    assert (outcome["service"], outcome["view"], outcome["state"]) == ("visits", "views", "built")
    assert outcome["events"] == 0 and outcome["done"] is True
    assert "\r" not in err  # no bar drawn into a pipe


async def test_dead_letters_discard_says_what_became_of_each(
    visits: tuple[str, Database], capsys: pytest.CaptureFixture[str]
) -> None:
    url, database = visits
    letter = await kept_dead_letter(database, consumer=DURABLE)
    asked = ["dead-letters", "discard", "--url", url, "--token", TOKEN, "--service", "visits"]
    code, outcomes, _ = await run(capsys, *asked, str(letter), "--json")
    assert code == 0
    assert outcomes == [{"service": "visits", "id": letter, "discarded": True}]
    code, outcomes, _ = await run(capsys, *asked, str(letter), "--json")
    assert code == 1
    assert outcomes[0]["discarded"] is False and "no dead letter" in outcomes[0]["error"]


async def test_republish_gives_the_count_and_how_many_were_new(
    tmp_path: Path, nats_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    database, _ = await stored_trainers(tmp_path, 3)
    asked = ["republish", "enrolment", "--database-url", database, "--nats-url", nats_url]
    code, first, err = await run(capsys, *asked, "--json")
    assert code == 0
    assert first == {
        "service": "enrolment",
        "stream": "SCORE_ENROLMENT",
        "count": 3,
        "first": 1,
        "last": 3,
        "added": 3,
    }
    assert "\r" not in err
    code, again, _ = await run(capsys, *asked, "--from", "2", "--json")
    assert (code, again["count"], again["first"], again["added"]) == (0, 2, 2, 0)


async def test_republish_draws_its_bar_on_a_terminal(tmp_path: Path, nats_url: str) -> None:
    database, _ = await stored_trainers(tmp_path, 3)
    terminal = io.StringIO()
    bar = ProgressBar(terminal, "Republishing enrolment", live=True)
    done = await _republish("enrolment", database, nats_url, bar=bar)
    assert done.count == 3
    assert "\rRepublishing enrolment [" in terminal.getvalue()
    assert terminal.getvalue().endswith("3/3 events 100%")


def test_credentials_create_and_revoke_print_json_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # No broker runs in this data folder: that is said on stderr, not into the JSON.
    code = main(
        ["credentials", "create", "--subjects", "score.bo.oruro.>", "--name", "observatory",
         "--data-dir", str(tmp_path), "--json"]
    )  # fmt: skip
    said = capsys.readouterr()
    assert code == 0
    created = json.loads(said.out)
    assert created["name"] == "reader-observatory"
    assert "no broker is running here" in said.err
    code = main(["credentials", "revoke", "observatory", "--data-dir", str(tmp_path), "--json"])
    assert code == 0
    assert json.loads(capsys.readouterr().out) == {
        "revoked": "reader-observatory",
        "server_reloaded": False,
    }
