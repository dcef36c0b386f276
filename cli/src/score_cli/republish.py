"""`score republish`: re-drive a range of a service's event store to its JetStream stream.

For a stream that was lost or damaged: JetStream drops what it still remembers by
`Nats-Msg-Id`, consumers drop the rest by their inbox, so re-driving too much is harmless.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from score_chassis.database import Database
from score_chassis.jetstream import NatsConnection, ensure_stream
from score_chassis.relay import OutboxRelay
from score_cli.datadir import database_url, nats_url
from score_cli.up import DEFAULT_DATA_DIR, SERVICES
from score_contracts.subjects import STREAMS


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "republish", help="re-drive a range of a service's events to its stream"
    )
    parser.add_argument("service", choices=[s.name for s in SERVICES])
    parser.add_argument(
        "--from", dest="after", type=int, default=0, help="start after this global position"
    )
    parser.add_argument("--to", dest="until", type=int, default=None, help="last position")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--database-url", help="default: the service's SQLite file in the data dir")
    parser.add_argument("--nats-url", help="default: the running `score up` of the data dir")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    database = args.database_url or database_url(args.data_dir, args.service)
    url = nats_url(args.nats_url, args.data_dir, command="republish")
    if url is None:
        return 2
    count = asyncio.run(_republish(args.service, database, url, args.after, args.until))
    print(f"republished {count} events of {args.service}")
    return 0


async def _republish(
    service: str, database_url: str, nats_url: str, after: int, until: int | None
) -> int:
    database = Database(database_url)
    nats = NatsConnection(nats_url, name="score-republish")
    nats.start()
    try:
        async with asyncio.timeout(10):
            await nats.ready.wait()
        await ensure_stream(nats.jetstream, STREAMS[service], update_existing=False)
        return await OutboxRelay(database, nats).republish(after=after, until=until)
    finally:
        await nats.close()
        await database.dispose()
