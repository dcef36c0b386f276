"""`score doctor`: is the system of a data folder well? One line per check, and an exit code.

It asks what an operator would: is every service up and ready, is NATS reachable, does each
context's stream exist, is anything waiting in an outbox or behind in a consumer, and has
anything been dead-lettered.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

import httpx
import nats
from nats.js.errors import NotFoundError

from score_cli.datadir import running_system
from score_cli.up import DEFAULT_DATA_DIR
from score_contracts.subjects import STREAMS

OK, WARN, FAIL = "ok", "warn", "FAIL"


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("doctor", help="check the running system of a data folder")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    running = running_system(args.data_dir)
    if running is None:
        print(f"{FAIL:<4}  nothing is running in {args.data_dir} (start `score up`)")
        return 1
    findings = diagnose(running)
    for level, message in findings:
        print(f"{level:<4}  {message}")
    return 1 if any(level == FAIL for level, _ in findings) else 0


def diagnose(running: dict[str, Any]) -> list[tuple[str, str]]:
    services: dict[str, str] = dict(running["services"])
    findings = [f for name, url in services.items() for f in _service(name, url)]
    return findings + asyncio.run(_streams(str(running["nats_url"]), services))


def _service(name: str, url: str) -> list[tuple[str, str]]:
    try:
        response = httpx.get(f"{url}/readyz", timeout=5, trust_env=False)
    except httpx.HTTPError as error:
        return [(FAIL, f"{name}: not answering at {url} ({type(error).__name__})")]
    body = response.json()
    if response.status_code != 200:
        return [(FAIL, f"{name}: not ready: {body.get('checks')}")]
    checks = body["checks"]
    findings = [(OK, f"{name}: ready at {url}")]
    if checks["nats"] != "ok":
        findings.append((WARN, f"{name}: NATS {checks['nats']}; writes wait in the outbox"))
    if checks.get("outbox_pending"):
        findings.append((WARN, f"{name}: {checks['outbox_pending']} events not yet published"))
    for consumer, state in checks.get("consumers", {}).items():
        if state.get("lag"):
            findings.append((WARN, f"{name}: consumer {consumer} is {state['lag']} behind"))
    if checks.get("dead_letters"):
        findings.append(
            (WARN, f"{name}: {checks['dead_letters']} dead letters (table dead_letters)")
        )
    return findings


async def _streams(url: str, services: dict[str, str]) -> list[tuple[str, str]]:
    try:
        client = await nats.connect(url, connect_timeout=3, max_reconnect_attempts=1)
    except Exception as error:  # any failure to connect is the finding
        return [(FAIL, f"NATS: not reachable at {url} ({type(error).__name__})")]
    findings = [(OK, f"NATS: reachable at {url}")]
    try:
        js = client.jetstream()
        for context in services:
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
