"""A downstream consumer of SCORE's event streams, with only `score-contracts` and nats-py.

    python examples/consumer.py --nats-url nats://user:password@host:4222 \
        --region santa_cruz --durable reader-observatory --from start --idle 5

For each producing context it makes (or resumes) a durable pull consumer on the context's
stream, filtered to one country and region, reads until no message came for `--idle` seconds,
and prints what it counted as JSON: events by type, duplicates skipped, messages refused.
What it does with each event, a real consumer does in its own transaction (see
docs/consumers.md): here it counts.

It relies on what the streams guarantee, and nothing more: delivery at least once (so it
de-duplicates on the CloudEvents `id`), in order per aggregate (`subject`, by `streamversion`),
and no order between aggregates or streams.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
import urllib.parse
from collections import Counter
from typing import Any

import nats
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from score_contracts import InvalidEvent, UnknownEventType, parse
from score_contracts.subjects import STREAMS


def deliver_policy(start: str) -> dict[str, Any]:
    """`--from`: `start` (all history), `new` (from now on), `seq:N` or an ISO date/time."""
    if start == "start":
        return {"deliver_policy": DeliverPolicy.ALL}
    if start == "new":
        return {"deliver_policy": DeliverPolicy.NEW}
    if start.startswith("seq:"):
        return {"deliver_policy": DeliverPolicy.BY_START_SEQUENCE, "opt_start_seq": int(start[4:])}
    since = dt.datetime.fromisoformat(start)
    since = since if since.tzinfo else since.replace(tzinfo=dt.UTC)
    # JetStream's own time: when the message was stored, which is about the event's `time`.
    return {"deliver_policy": DeliverPolicy.BY_START_TIME, "opt_start_time": since}


class Counts:
    """What this example does with events: counts them, once each."""

    def __init__(self) -> None:
        self.by_type: Counter[str] = Counter()
        self.duplicates = 0
        self.refused: Counter[str] = Counter()
        self._seen: set[str] = set()  # a real consumer keeps these in its database

    def handle(self, body: bytes) -> None:
        try:
            event = parse(body)
        except UnknownEventType as unknown:  # a newer major version: not ours to read yet
            self.refused[f"unknown type {unknown.event_type}"] += 1
            return
        except InvalidEvent as invalid:
            self.refused[invalid.field] += 1
            return
        if event.id in self._seen:  # at least once: a redelivery, or `score republish`
            self.duplicates += 1
            return
        self._seen.add(event.id)
        self.by_type[event.type] += 1

    def report(self) -> dict[str, Any]:
        return {
            "events": sum(self.by_type.values()),
            "by_type": dict(sorted(self.by_type.items())),
            "duplicates": self.duplicates,
            "refused": dict(self.refused),
        }


def inbox_of(url: str) -> str:
    """The inbox prefix of the user the URL names (`score credentials` gives readers
    `_INBOX_<user>`: the only inbox they may read), or NATS's default."""
    user = urllib.parse.urlsplit(url).username
    return f"_INBOX_{urllib.parse.unquote(user)}" if user else "_INBOX"


async def consume(args: argparse.Namespace) -> dict[str, Any]:
    connection = await nats.connect(
        args.nats_url, name=args.durable, inbox_prefix=args.inbox_prefix or inbox_of(args.nats_url)
    )
    js = connection.jetstream()
    counts = Counts()
    try:
        for context in args.contexts:
            stream = STREAMS[context]
            subject = f"score.{args.country}.{args.region}.{context}.>"
            durable = args.durable  # one per stream, under the name your credentials allow
            await js.add_consumer(
                stream.name,
                ConsumerConfig(
                    name=durable,
                    durable_name=durable,
                    filter_subject=subject,
                    ack_policy=AckPolicy.EXPLICIT,
                    max_ack_pending=1000,
                    **deliver_policy(args.start),
                ),
            )
            pull = await js.pull_subscribe_bind(durable, stream=stream.name)
            while True:
                try:
                    messages = await pull.fetch(200, timeout=args.idle)
                except NatsTimeout:
                    break  # nothing for `--idle` seconds: caught up
                for message in messages:
                    counts.handle(message.data)
                    await message.ack()  # after handling: a crash before it redelivers
            await pull.unsubscribe()
    finally:
        await connection.close()
    return counts.report()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nats-url", default="nats://127.0.0.1:4222")
    parser.add_argument("--country", default="bo")
    parser.add_argument("--region", default="*", help="a region slug, or * for all")
    parser.add_argument(
        "--contexts", nargs="+", default=list(STREAMS), choices=list(STREAMS), metavar="CONTEXT"
    )
    parser.add_argument(
        "--durable",
        default="example-consumer",
        help="the durable consumer's name on each stream: a reader's consumer name",
    )
    parser.add_argument(
        "--inbox-prefix",
        help="where replies to this client go: a reader's inbox prefix "
        "(default: _INBOX_<the URL's user>, or NATS's own without one)",
    )
    parser.add_argument(
        "--from",
        dest="start",
        default="start",
        help="start (all history), new, seq:N, or a date/time such as 2025-03-01",
    )
    parser.add_argument("--idle", type=float, default=2.0, help="seconds without a message")
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(consume(args)), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
