"""`score republish`: re-drive a range of a service's event store to its JetStream stream.

For a stream that was lost or damaged: JetStream drops what it still remembers by
`Nats-Msg-Id`, consumers drop the rest by their inbox, so re-driving too much is harmless,
and re-driving too little loses events for good (a replay rebuilds a view from the stream).
So the range names the first and the last position re-driven, both included, and `--from 1`,
the default, is the whole store. A bar counts the events on stderr when it is a terminal;
`--json` prints the outcome on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import sqlalchemy as sa

from score_chassis.database import Database
from score_chassis.jetstream import DUPLICATE_WINDOW_SECONDS, NatsConnection, ensure_stream
from score_chassis.relay import OutboxRelay
from score_chassis.settings import base_url_of
from score_chassis.tables import events
from score_cli.datadir import database_url, nats_url
from score_cli.nats_server import LOOPBACK
from score_cli.replay import ProgressBar
from score_cli.up import DEFAULT_DATA_DIR, DEFAULT_PORT_BASE, SERVICES
from score_contracts.subjects import STREAMS


@dataclass(frozen=True)
class Republished:
    """What a republish re-drove: how many events, the positions of the first and last, and
    how many of them the stream took as new."""

    count: int
    first: int | None
    last: int | None
    added: int = 0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "republish",
        help="re-drive a range of a service's events to its stream",
        description="Publish the events of a service's store from position N to M (both "
        "included) to its JetStream stream again. What the stream still holds is dropped as "
        "a duplicate, so re-driving more than was lost is harmless.",
    )
    parser.add_argument("service", choices=[s.name for s in SERVICES])
    parser.add_argument(
        "--from",
        dest="first",
        metavar="N",
        type=_position,
        default=1,
        help="first global position re-driven, included (default: 1, the whole store)",
    )
    parser.add_argument(
        "--to",
        dest="last",
        metavar="M",
        type=_position,
        default=None,
        help="last global position re-driven, included (default: the store's last)",
    )
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--database-url", help="default: the service's SQLite file in the data dir")
    parser.add_argument("--nats-url", help="default: the running `score up` of the data dir")
    parser.add_argument(
        "--replicas",
        type=_replicas,
        default=None,
        help="the nodes a missing stream is made on: 3 on a cluster (default: "
        "$SCORE_STREAM_REPLICAS, else 1); an existing stream is left as it is",
    )
    parser.add_argument(
        "--public-url",
        help="the service's public address, which the events' dataschema names (its "
        "SCORE_PUBLIC_URL; default: where `score up` serves it)",
    )
    parser.add_argument(
        "--json", action="store_true", help="the outcome as JSON (count, positions, new)"
    )
    parser.set_defaults(handler=run)


def _position(text: str) -> int:
    position = int(text)
    if position < 1:
        raise argparse.ArgumentTypeError("positions start at 1")
    return position


def _replicas(text: str) -> int:
    replicas = int(text)
    if not 1 <= replicas <= 5:
        raise argparse.ArgumentTypeError("a stream has 1 to 5 replicas")
    return replicas


def run(args: argparse.Namespace) -> int:
    if args.last is not None and args.last < args.first:
        print(f"score republish: --to {args.last} is before --from {args.first}", file=sys.stderr)
        return 2
    try:
        # As the services read it, so that a deploy's environment makes the stream they would.
        replicas = args.replicas or _replicas(os.environ.get("SCORE_STREAM_REPLICAS") or "1")
    except (ValueError, argparse.ArgumentTypeError):
        print("score republish: SCORE_STREAM_REPLICAS is not a number from 1 to 5", file=sys.stderr)
        return 2
    database = args.database_url or database_url(args.data_dir, args.service)
    url = nats_url(args.nats_url, args.data_dir, command="republish")
    if url is None:
        return 2
    bar = ProgressBar(sys.stderr, f"Republishing {args.service}")
    done = asyncio.run(
        _republish(
            args.service,
            database,
            url,
            first=args.first,
            last=args.last,
            replicas=replicas,
            bar=bar,
            public_url=args.public_url,
        )
    )
    bar.finish()
    stream = STREAMS[args.service].name
    if args.json:
        print(json.dumps({"service": args.service, "stream": stream, **asdict(done)}, indent=2))
        return 0
    if done.count == 0:
        print(f"no events of {args.service} in that range: nothing republished to {stream}")
    else:
        print(
            f"republished {done.count} events of {args.service} to {stream}: "
            f"positions {done.first} to {done.last}; {done.added} of them were new to it"
        )
    if done.added < done.count:
        # JetStream drops an id it holds, and one it saw within its duplicate window even if
        # the message is gone since (a purge, a deleted message).
        minutes = DUPLICATE_WINDOW_SECONDS / 60
        print(
            f"the others {stream} held already, or had seen less than {minutes:g} minutes "
            "ago: if `score doctor` still finds it behind, run this again after that"
        )
    return 0


async def _republish(
    service: str,
    database_url: str,
    nats_url: str,
    *,
    first: int = 1,
    last: int | None = None,
    replicas: int = 1,
    bar: ProgressBar | None = None,
    public_url: str | None = None,
) -> Republished:
    database = Database(database_url)
    nats = NatsConnection(nats_url, name="score-republish")
    nats.start()
    try:
        async with asyncio.timeout(10):
            await nats.ready.wait()
        await ensure_stream(
            nats.jetstream, STREAMS[service], replicas=replicas, update_existing=False
        )
        in_range = events.c.position >= first
        if last is not None:
            in_range &= events.c.position <= last
        async with database.transaction(write=False) as conn:
            bounds = await conn.execute(
                sa.select(sa.func.min(events.c.position), sa.func.max(events.c.position)).where(
                    in_range
                )
            )
            lowest, highest = bounds.one()
        if highest is None:
            return Republished(0, None, None)
        held = await _messages(nats, service)
        # The range is fixed now: what is appended meanwhile the relay publishes anyway. And
        # the relay speaks of the position after which to start: the one before the first.
        # Where the service serves its schemas, for `dataschema`: as its relay names them.
        port = next(s.port(DEFAULT_PORT_BASE) for s in SERVICES if s.name == service)
        base_url = (public_url or base_url_of(LOOPBACK, port)).rstrip("/")
        relay = OutboxRelay(database, nats, base_url=base_url)
        progress: Callable[[int], None] | None = None
        if bar is not None:
            total = highest - lowest + 1  # positions, an upper bound of the events re-driven

            def progress(done: int) -> None:
                bar.show(done, max(total, done))

        count = await relay.republish(after=first - 1, until=highest, on_progress=progress)
        return Republished(count, lowest, highest, await _messages(nats, service) - held)
    finally:
        await nats.close()
        await database.dispose()


async def _messages(nats: NatsConnection, service: str) -> int:
    info = await nats.jetstream.stream_info(STREAMS[service].name)
    return int(info.state.messages or 0)
