"""`score replay`: rebuild a service's views from the event streams.

The service does the work — it owns its database and its consumer — and this command asks it
to, over its admin-only operations endpoint, then follows its progress with a bar. Views are
rebuilt by the service that serves them, so there is no moment when two processes write them.
The bar is drawn on stderr when it is a terminal; `--json` prints the outcome on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import httpx

from score_cli.datadir import SECRET_FILE, admin_token, running_system
from score_cli.up import DEFAULT_DATA_DIR


@dataclass(frozen=True)
class Target:
    """Views a service can rebuild, and the endpoint that does it."""

    service: str
    path: str
    description: str


TARGETS: dict[str, Target] = {
    "visits-views": Target(
        "visits",
        "/v1/ops/replay/views",
        "the visits service's views of enterprises and trainers, from SCORE_ENROLMENT",
    ),
    "indicators-projection": Target(
        "indicators",
        "/v1/ops/replay/projection",
        "the indicators' projection, from SCORE_ENROLMENT and SCORE_VISITS",
    ),
}


class ReplayFailed(RuntimeError):
    """The service refused or could not do the rebuild; the message says why."""


class ProgressBar:
    """A one-line bar redrawn in place on a terminal; elsewhere (a log, a pipe) silent, so that
    only the summary is written."""

    def __init__(self, out: TextIO, label: str, *, width: int = 30, live: bool | None = None):
        self.out = out
        self.label = label
        self.width = width
        self.live = out.isatty() if live is None else live

    def show(self, done: int, total: int) -> None:
        if not self.live:
            return
        fraction = 1.0 if total <= 0 else min(done / total, 1.0)
        filled = round(fraction * self.width)
        bar = "#" * filled + "." * (self.width - filled)
        self.out.write(f"\r{self.label} [{bar}] {done}/{total} events {fraction:4.0%}")
        self.out.flush()

    def note(self, message: str) -> None:
        """A line of its own, under the bar (which is drawn again on the next `show`)."""
        self.out.write(
            f"\n{self.label}: {message}\n" if self.live else f"{self.label}: {message}\n"
        )
        self.out.flush()

    def finish(self) -> None:
        if self.live:
            self.out.write("\n")
            self.out.flush()


async def replay(
    client: httpx.AsyncClient,
    target: Target,
    *,
    bar: ProgressBar,
    interval: float = 0.2,
) -> dict[str, Any]:
    """Start the rebuild and follow it until done; returns the last progress report.

    The service answers `202` at once, with a `Location` to follow; asked while a rebuild is
    under way, it points at that one rather than start another. `client` talks to the service
    with an admin token. Raises ReplayFailed. Bound it with `asyncio.timeout`: cancelling stops
    the following, not the rebuild.
    """
    started = await client.post(target.path)
    progress = _progress(started)
    location = started.headers.get("Location") or target.path
    total = 0
    said: str | None = None
    while progress["state"] == "rebuilding":
        total = progress["target"] or progress["last_sequence"] or total
        bar.show(min(progress["processed"] or 0, total), total)
        if progress["error"] and progress["error"] != said:
            said = progress["error"]
            bar.note(f"waiting: {said}")
        await asyncio.sleep(interval)
        progress = _progress(await client.get(location))
    if progress["state"] == "failed":
        raise ReplayFailed(f"the rebuild did not start: {progress['error']}")
    total = total or progress["last_sequence"] or 0
    bar.show(total, total)
    bar.finish()
    return {**progress, "events": total}


def _progress(response: httpx.Response) -> dict[str, Any]:
    if response.is_success:
        body: dict[str, Any] = response.json()
        return body
    try:
        detail = response.json().get("detail") or response.reason_phrase
    except ValueError:
        detail = response.reason_phrase
    raise ReplayFailed(f"{response.status_code} from {response.request.url}: {detail}")


# The command.


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "replay",
        help="rebuild a service's views from the event streams",
        description="Rebuild a service's views from the event streams, showing progress. The "
        "service keeps running. The indicators' projection is built beside the served one, "
        "which goes on answering until the new one replaces it; the visits views are cleared, "
        "and until they are rebuilt the commands that decide on them answer 'not known yet' "
        "(409, retryable). Asked while a rebuild is under way, it follows that "
        "one. Targets: " + "; ".join(f"{name}: {t.description}" for name, t in TARGETS.items()),
    )
    parser.add_argument("target", choices=sorted(TARGETS), help="what to rebuild")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help="the running `score up`'s data folder (default: %(default)s)",
    )
    parser.add_argument("--url", help="the service's base URL (default: from the data folder)")
    parser.add_argument(
        "--token", help="an admin token (default: one made with the data folder's key)"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        help="seconds to follow the rebuild before giving up (default: %(default)s)",
    )
    parser.add_argument(
        "--json", action="store_true", help="the outcome as JSON (the view, events read, …)"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    target: Target = TARGETS[args.target]
    url = args.url or _service_url(args.data_dir, target.service)
    if url is None:
        print(
            f"score replay: no running {target.service} service in {args.data_dir} "
            "(is `score up` running?); pass --url",
            file=sys.stderr,
        )
        return 2
    token = args.token or _operator_token(args.data_dir)
    if token is None:
        print(f"score replay: no token key in {args.data_dir}; pass --token", file=sys.stderr)
        return 2
    try:
        progress = asyncio.run(_replay_at(url, token, target, args.timeout))
    except ReplayFailed as error:
        print(f"\nscore replay: {error}", file=sys.stderr)
        return 1
    except TimeoutError:
        print(
            f"\nscore replay: not done within {args.timeout:g}s; the rebuild goes on in the "
            "service",
            file=sys.stderr,
        )
        return 1
    except httpx.HTTPError as error:
        print(f"\nscore replay: {url} did not answer: {error}", file=sys.stderr)
        return 1
    if args.json:
        # The service's last report (its `view`, `state`, …) and the events read.
        outcome = {"service": target.service, **progress}
        print(json.dumps(outcome, indent=2))
        return 0
    print(f"Rebuilt {target.description}: {progress['events']} events read.")
    return 0


async def _replay_at(url: str, token: str, target: Target, within: float) -> dict[str, Any]:
    # trust_env=False: a `score up` service is on loopback, never behind the environment's proxy.
    async with httpx.AsyncClient(
        base_url=url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30.0,
        trust_env=False,
    ) as client:
        bar = ProgressBar(sys.stderr, f"Rebuilding {target.service} views")
        async with asyncio.timeout(within):
            return await replay(client, target, bar=bar)


def _service_url(data_dir: Path, service: str) -> str | None:
    system = running_system(data_dir) or {}
    services = system.get("services")
    if not isinstance(services, dict):
        return None
    url = services.get(service)
    return str(url) if url else None


def _operator_token(data_dir: Path) -> str | None:
    # Making a key here would only make a token no running service accepts.
    if not (data_dir / SECRET_FILE).exists():
        return None
    return admin_token(data_dir, ttl=dt.timedelta(minutes=30), subject="operator")
