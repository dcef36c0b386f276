"""`score export events`: the published events as a file, one row per event, for data teams
who want a file rather than a stream (docs/consumers.md).

It reads the streams as any consumer does (an ephemeral ordered consumer per stream, from the
start or from `--since`), and writes each event as it comes: memory stays constant whatever
the history's length. On a terminal, a progress line counts on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import datetime as dt
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import nats
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import ConsumerConfig, DeliverPolicy

from score_cli.datadir import nats_url
from score_cli.up import DEFAULT_DATA_DIR
from score_contracts.events import BY_TYPE
from score_contracts.subjects import STREAMS

COLUMNS = (
    "id",
    "type",
    "subject",
    "streamversion",
    "time",
    "source",
    "correlationid",
    "causationid",
    "dataschema",
    "data",
)
"""The CSV's columns: the envelope's attributes, then `data` as one JSON text."""

_QUIET_SECONDS = 2.0
"""How long a message known to be there is waited for before the stream is given up."""


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("export", help="write published data to a file")
    what = parser.add_subparsers(title="what", metavar="WHAT", required=True)
    events = what.add_parser("events", help="every published event, one row each")
    events.add_argument("--format", choices=("jsonl", "csv"), required=True)
    events.add_argument(
        "--since", type=_since, help="events recorded from this date (YYYY-MM-DD) or time on"
    )
    events.add_argument(
        "--type", dest="types", action="append", choices=sorted(BY_TYPE), metavar="TYPE",
        help="only events of this type (repeatable), e.g. org.ilo.score.visits.visit_completed.v1",
    )  # fmt: skip
    events.add_argument("--output", "-o", type=Path, help="file to write (default: stdout)")
    events.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    events.add_argument("--nats-url", help="default: the running `score up` of the data dir")
    events.set_defaults(handler=run)


def _since(text: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date or time: {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def run(args: argparse.Namespace) -> int:
    url = nats_url(args.nats_url, args.data_dir, command="export events")
    if url is None:
        return 2
    out: IO[str]
    with open(args.output, "w", encoding="utf-8", newline="") if args.output else _stdout() as out:
        count = asyncio.run(export(url, out, args.format, since=args.since, types=args.types))
    print(f"exported {count} events", file=sys.stderr)
    return 0


def _stdout() -> IO[str]:
    # A context manager that does not close stdout.
    return open(sys.stdout.fileno(), "w", encoding="utf-8", newline="", closefd=False)


async def export(
    url: str,
    out: IO[str],
    format_: str,
    *,
    since: dt.datetime | None = None,
    types: list[str] | None = None,
) -> int:
    """Write every event (of `types`, recorded from `since`) to `out`; return how many."""
    writer = _Writer(out, format_)
    progress = _Progress(sys.stderr)
    client = await nats.connect(url, name="score-export")
    js = client.jetstream()
    try:
        for subject, stream in _filters(types):
            config = ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_TIME if since else DeliverPolicy.ALL,
                opt_start_time=since,
            )
            subscription = await js.subscribe(
                subject, stream=stream, ordered_consumer=True, config=config
            )
            try:
                # Nothing to export (none pending, none sent yet): no message to wait for.
                info = await subscription.consumer_info()
                if not info.num_pending and not (info.delivered and info.delivered.consumer_seq):
                    continue
                while True:
                    try:
                        message = await subscription.next_msg(timeout=_QUIET_SECONDS)
                    except NatsTimeout:
                        break  # nothing of it there (left)
                    writer.write(json.loads(message.data))
                    pending = message.metadata.num_pending
                    progress.show(writer.count, pending)
                    if not pending:
                        break
            finally:
                await subscription.unsubscribe()
    finally:
        await client.close()
        progress.done()
    return writer.count


def _filters(types: list[str] | None) -> Iterator[tuple[str, str]]:
    """(subject filter, stream) to read: each stream whole, or the subject of each type."""
    if not types:
        for spec in STREAMS.values():
            yield spec.subjects[0], spec.name
        return
    for type_ in types:
        cls = BY_TYPE[type_]
        yield f"score.*.*.{cls.context}.{cls.event_name}.v{cls.major}", STREAMS[cls.context].name


class _Writer:
    def __init__(self, out: IO[str], format_: str) -> None:
        self.out = out
        self.count = 0
        self._csv = (
            csv.DictWriter(out, COLUMNS, extrasaction="ignore") if format_ == "csv" else None
        )
        if self._csv is not None:
            self._csv.writeheader()

    def write(self, event: dict[str, Any]) -> None:
        if self._csv is not None:
            self._csv.writerow({**event, "data": json.dumps(event.get("data"), ensure_ascii=False)})
        else:
            self.out.write(json.dumps(event, ensure_ascii=False) + "\n")
        self.count += 1


class _Progress:
    """A line counting on a terminal; nothing when stderr is a file or a pipe."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.on = stream.isatty()

    def show(self, written: int, pending: int) -> None:
        if self.on and (written % 500 == 0 or not pending):
            self.stream.write(f"\rexported {written} events, {pending} left in this stream ")
            self.stream.flush()

    def done(self) -> None:
        if self.on:
            self.stream.write("\n")
