"""A downstream team's first day, against a running system: docs/consumers.md's example
consumer counts what was recorded, from the workspace and from the contracts' wheel alone;
each event names the schema of its `data` at its producer, and what caused it."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import nats
import pytest

from score_cli.broker_config import operator_url
from score_cli.up import System

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "consumer.py"
REGISTERED = "org.ilo.score.enrolment.enterprise_registered.v1"
ENROLLED = "org.ilo.score.enrolment.enterprise_enrolled.v1"


def eventually(probe: Callable[[], Any], *, within: float = 20.0) -> Any:
    """Poll until `probe` returns something truthy; fail after `within` seconds."""
    deadline = time.monotonic() + within
    while not (value := probe()):
        assert time.monotonic() < deadline, f"not true within {within} s"
        time.sleep(0.05)
    return value


@pytest.fixture(scope="module")
def recorded(system: System) -> dict[str, Any]:
    """Two enterprises registered in Santa Cruz (one enrolled), one in Oruro; all published."""
    http = httpx.Client(
        headers={"Authorization": f"Bearer {system.admin_token()}"}, trust_env=False, timeout=10
    )
    enrolment = system.url("enrolment")
    ids: list[str] = []
    first: httpx.Response | None = None
    for number, region in enumerate(("santa_cruz", "santa_cruz", "oruro")):
        response = http.post(
            f"{enrolment}/v1/enterprises",
            headers={"X-Correlation-ID": f"downstream-test-{number}"},
            json={
                "name": f"Enterprise {number}",
                "tax_id": f"10203040{number}",
                "region": region,
                "sector": "textiles",
                "chamber": "CAINCO",
                "workforce": {"women": 30, "men": 25},
            },
        )
        assert response.status_code == 201, response.text
        first = first or response
        ids.append(response.json()["id"])
    enrolled = http.post(
        f"{enrolment}/v1/enterprises/{ids[0]}/enrolments",
        json={"module": 1, "delivery": "direct", "delivery_cost": {"amount": "4200"}},
    )
    assert enrolled.status_code == 201, enrolled.text
    eventually(lambda: http.get(f"{enrolment}/readyz").json()["checks"]["outbox_pending"] == 0)
    assert first is not None
    return {"first": ids[0], "request_id": first.headers["X-Request-ID"]}


def reader(system: System, name: str, subjects: str = "score.bo.santa_cruz.>") -> dict[str, Any]:
    """Credentials for a downstream reader, as an operator makes them (docs/consumers.md)."""
    done = subprocess.run(
        [sys.executable, "-m", "score_cli.main", "credentials", "create", "--subjects", subjects,
         "--name", name, "--json", "--data-dir", str(system.data_dir)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    made: dict[str, Any] = json.loads(done.stdout)
    return made


def run_example(python: str, credentials: dict[str, Any], *options: str) -> dict[str, Any]:
    done = subprocess.run(
        [python, str(EXAMPLE), "--nats-url", credentials["url"], "--durable",
         credentials["consumer_name"], "--contexts", "enrolment", "--idle", "1", *options],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def test_the_example_counts_a_regions_events_from_the_start(
    system: System, recorded: dict[str, Any]
) -> None:
    santa_cruz = reader(system, "counts")
    report = run_example(sys.executable, santa_cruz, "--region", "santa_cruz")

    assert report["by_type"] == {ENROLLED: 1, REGISTERED: 2}
    assert report["duplicates"] == 0 and report["refused"] == {}
    # Durable: run again, it resumes where it stopped, with nothing new to count.
    assert run_example(sys.executable, santa_cruz, "--region", "santa_cruz")["events"] == 0


def test_a_reader_of_one_region_is_refused_another(
    system: System, recorded: dict[str, Any]
) -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), "--nats-url", reader(system, "elsewhere")["url"],
         "--durable", "reader-elsewhere", "--contexts", "enrolment", "--idle", "1",
         "--region", "oruro"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode != 0


def test_an_event_names_its_data_schema_at_its_producer_and_its_cause(
    system: System, recorded: dict[str, Any]
) -> None:
    async def first_event() -> dict[str, Any]:
        connection = await nats.connect(operator_url(system.nats_url, system.data_dir))
        try:
            js = connection.jetstream()
            sub = await js.subscribe(
                "score.bo.santa_cruz.enrolment.enterprise_registered.v1", ordered_consumer=True
            )
            got = await sub.next_msg(timeout=5)
            body: dict[str, Any] = json.loads(got.data)
            await sub.unsubscribe()
            return body
        finally:
            await connection.close()

    event = asyncio.run(first_event())
    schema = httpx.get(event["dataschema"], trust_env=False, timeout=5)

    assert event["subject"] == f"enterprise/{recorded['first']}"
    assert event["dataschema"].startswith(system.url("enrolment") + "/schemas/")
    assert schema.status_code == 200
    assert schema.headers["content-type"] == "application/schema+json"
    jsonschema.Draft202012Validator(schema.json()).validate(event["data"])
    assert event["correlationid"] == "downstream-test-0"
    assert event["causationid"] == recorded["request_id"]


def test_the_example_runs_with_the_contracts_wheel_alone(
    system: System, recorded: dict[str, Any], tmp_path: Path
) -> None:
    uv = shutil.which("uv") or str(ROOT / ".cache" / "uv-bootstrap" / "bin" / "uv")
    if not Path(uv).exists():
        pytest.skip("no uv to build the wheel with (`make sync` installs it)")

    def run(*command: str) -> None:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr

    run(uv, "build", "--wheel", str(ROOT / "contracts"), "-o", str(tmp_path), "-q")
    [wheel] = tmp_path.glob("score_contracts-*.whl")
    frozen = subprocess.run(
        [uv, "pip", "freeze", "--python", sys.executable],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    pins = tmp_path / "constraints.txt"  # the workspace's versions: no resolving from scratch
    pins.write_text("\n".join(line for line in frozen.splitlines() if "==" in line))
    run(uv, "venv", "-q", str(tmp_path / "venv"))
    python = str(tmp_path / "venv" / "bin" / "python")
    run(uv, "pip", "install", "-q", "--python", python, "-c", str(pins), str(wheel), "nats-py")

    checked = subprocess.run(
        [python, "-c", "from score_contracts.schemas import problems; print(problems())"],
        capture_output=True, text=True, check=True, cwd=tmp_path,
    )  # fmt: skip
    yesterday = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).isoformat()
    report = run_example(
        python, reader(system, "wheel"), "--region", "santa_cruz", "--from", yesterday
    )

    assert checked.stdout.strip() == "[]"  # every schema found, in the wheel's own copy
    assert report["by_type"] == {ENROLLED: 1, REGISTERED: 2}  # Santa Cruz's, not Oruro's


def test_score_export_events_writes_one_row_per_event(
    system: System, recorded: dict[str, Any], tmp_path: Path
) -> None:
    def export(*options: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "score_cli.main", "export", "events",
             "--data-dir", str(system.data_dir), *options],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout

    rows = [json.loads(line) for line in export("--format", "jsonl").splitlines()]
    registered = export("--format", "csv", "--type", REGISTERED, "--since", "2000-01-01")
    tomorrow = (dt.date.today() + dt.timedelta(days=2)).isoformat()

    assert [row["type"] for row in rows].count(REGISTERED) == 3
    assert len({row["id"] for row in rows}) == len(rows)
    reader = csv.DictReader(io.StringIO(registered))
    lines = list(reader)
    assert list(reader.fieldnames or [])[:3] == ["id", "type", "subject"]
    assert [line["type"] for line in lines] == [REGISTERED] * 3
    assert json.loads(lines[0]["data"])["region"] == "santa_cruz"
    assert export("--format", "jsonl", "--since", tomorrow) == ""
