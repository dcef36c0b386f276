"""`score doctor`: is the system of a data folder well? One line per check, and an exit code.

It asks what an operator would: is every service up and ready, has `score up` had to restart
anything or given up on it, is NATS reachable, does each context's stream hold what its
producer's store published, is anything waiting in an outbox or behind in a consumer, and has
anything been dead-lettered. A finding that needs the operator says what to run. `--json`
prints the same findings for a script (a monitoring probe, a deploy's check), with the same
exit code.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import shlex
from pathlib import Path
from typing import Any

import httpx
import nats
from nats.js.errors import NotFoundError

from score_chassis.jetstream import redacted
from score_cli.broker_config import operator_url
from score_cli.datadir import running_system
from score_cli.up import DEFAULT_DATA_DIR
from score_contracts.subjects import STREAMS

OK, WARN, FAIL = "ok", "warn", "FAIL"

Finding = tuple[str, str]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("doctor", help="check the running system of a data folder")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument(
        "--json",
        action="store_true",
        help='{"healthy": …, "findings": [{"level": "ok|warn|FAIL", "message": …}]}',
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    running = running_system(args.data_dir)
    if running is None:
        findings = [(FAIL, f"nothing is running in {args.data_dir} (start `score up`)")]
    else:
        findings = diagnose(running, data_dir=args.data_dir)
    healthy = not any(level == FAIL for level, _ in findings)
    if args.json:
        listed = [{"level": level, "message": message} for level, message in findings]
        print(json.dumps({"healthy": healthy, "findings": listed}, indent=2))
    else:
        for level, message in findings:
            print(f"{level:<4}  {message}")
    return 0 if healthy else 1


def diagnose(running: dict[str, Any], *, data_dir: Path = DEFAULT_DATA_DIR) -> list[Finding]:
    """The findings on the system `running` (a `system.json`), in the order they are shown.

    `data_dir` is only what the commands suggested to the operator name.
    """
    services: dict[str, str] = dict(running["services"])
    children: dict[str, dict[str, Any]] = dict(running.get("children") or {})
    given_up = {name for name, child in children.items() if child.get("state") == "given up"}
    findings: list[Finding] = []
    stream_checks: dict[str, dict[str, Any]] = {}
    for name, url in services.items():
        if name in given_up:  # not asked: its own finding below says all there is
            continue
        service_findings, stream_check = _service(name, url, data_dir)
        findings += service_findings
        if stream_check is not None:
            stream_checks[name] = stream_check
    findings += [f for name, child in children.items() for f in _child(name, child)]
    contexts = [name for name in services if name not in given_up]
    return findings + asyncio.run(
        _streams(
            operator_url(str(running["nats_url"]), Path(running.get("data_dir") or data_dir)),
            contexts,
            stream_checks,
            data_dir,
        )
    )


def _service(
    name: str, url: str, data_dir: Path = DEFAULT_DATA_DIR
) -> tuple[list[Finding], dict[str, Any] | None]:
    """The findings on one service's `/readyz`, and its stream check if it made one."""
    try:
        response = httpx.get(f"{url}/readyz", timeout=5, trust_env=False)
    except httpx.HTTPError as error:
        return [(FAIL, f"{name}: not answering at {url} ({type(error).__name__})")], None
    body = response.json()
    if response.status_code != 200:
        return [(FAIL, f"{name}: not ready: {body.get('checks')}")], None
    checks = body["checks"]
    findings = [(OK, f"{name}: ready at {url}")]
    if checks["nats"] != "ok":
        findings.append((WARN, f"{name}: NATS {checks['nats']}; writes wait in the outbox"))
    if checks.get("outbox_pending"):
        findings.append((WARN, f"{name}: {checks['outbox_pending']} events not yet published"))
    for consumer, state in checks.get("consumers", {}).items():
        if state.get("lag"):
            findings.append((WARN, f"{name}: consumer {consumer} is {state['lag']} behind"))
    if kept := checks.get("dead_letters"):
        letters = "1 dead letter" if kept == 1 else f"{kept} dead letters"
        command = f"score dead-letters list --service {name}"
        if data_dir != DEFAULT_DATA_DIR:
            command += f" --data-dir {shlex.quote(str(data_dir))}"
        findings.append((WARN, f"{name}: {letters} (what it gave up on): run `{command}`"))
    return findings, checks.get("stream")


def _child(name: str, child: dict[str, Any]) -> list[Finding]:
    """What `score up` recorded of one of its processes, if anything happened to it."""
    restarts, how = int(child.get("restarts") or 0), child.get("last_exit")
    when = _local_time(child.get("last_exit_at"))
    if child.get("state") == "given up":
        return [
            (
                FAIL,
                f"{name}: given up after it {how} {child.get('failed_starts')} times in a row "
                f"before it was ready; the rest keeps running without it. Read "
                f"{child.get('log')}, fix what it says and start `score up` again",
            )
        ]
    if child.get("state") == "restarting":
        return [(WARN, f"{name}: down since {when} (it {how}); restart {restarts + 1} is due")]
    if restarts:
        times = "once" if restarts == 1 else f"{restarts} times"
        return [(WARN, f"{name}: restarted {times} by `score up`, last after it {how} at {when}")]
    return []


def _local_time(iso: str | None) -> str:
    if not iso:
        return "?"
    return dt.datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M:%S")


async def _streams(
    url: str, contexts: list[str], stream_checks: dict[str, dict[str, Any]], data_dir: Path
) -> list[Finding]:
    try:
        client = await nats.connect(url, connect_timeout=3, max_reconnect_attempts=1)
    except Exception as error:  # any failure to connect is the finding
        return [(FAIL, f"NATS: not reachable at {redacted(url)} ({type(error).__name__})")]
    findings = [(OK, f"NATS: reachable at {redacted(url)}")]
    try:
        js = client.jetstream()
        for context in contexts:
            check = stream_checks.get(context)
            if check is not None and check["state"] != "unknown":
                findings.append(_stream_against_store(context, check, data_dir))
                continue
            # The service could not compare (not answering, or not connected): existence only.
            spec = STREAMS[context]
            try:
                info = await js.stream_info(spec.name)
            except NotFoundError:
                findings.append((FAIL, f"stream {spec.name}: missing"))
                continue
            findings.append((OK, f"stream {spec.name}: {info.state.messages} events"))
    finally:
        await client.close()
    return findings


def _stream_against_store(context: str, check: dict[str, Any], data_dir: Path) -> Finding:
    """The line on a context's stream held against its producer's store (see stream_check)."""
    stream, stored, in_stream = check["stream"], check["stored"], check["in_stream"]
    waiting = f", {check['pending']} more wait in its outbox" if check["pending"] else ""
    if check["state"] == "ok":
        return OK, f"stream {stream}: {in_stream} events, the {context} store {stored}{waiting}"
    command = f"score republish {context} --from {check['republish_from'] or 1}"
    if data_dir != DEFAULT_DATA_DIR:
        command += f" --data-dir {shlex.quote(str(data_dir))}"
    held = "is missing" if check["state"] == "absent" else f"holds {in_stream} events"
    return FAIL, f"stream {stream} {held}, the {context} store {stored}{waiting}: run `{command}`"
