"""`score tail`: follow the events of the streams as they are published, one line each.

A downstream consumer's view: an ephemeral consumer from the position asked for, filtered
by subject (`score.bo.santa_cruz.>` for one region). Payloads are not printed unless asked:
they can hold personal data.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from pathlib import Path

import nats
from nats.js.api import DeliverPolicy

from score_cli.datadir import nats_url
from score_cli.up import DEFAULT_DATA_DIR


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("tail", help="follow the published events")
    parser.add_argument("subject", nargs="?", default="score.>", help="e.g. score.bo.la_paz.>")
    parser.add_argument("--all", action="store_true", help="from the start of the streams")
    parser.add_argument("--data", action="store_true", help="print each event's data too")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--nats-url", help="default: the running `score up` of the data dir")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    url = nats_url(args.nats_url, args.data_dir, command="tail")
    if url is None:
        return 2
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_tail(url, args.subject, args.all, args.data))
    return 0


async def _tail(url: str, subject: str, from_start: bool, with_data: bool) -> None:
    client = await nats.connect(url)
    js = client.jetstream()
    policy = DeliverPolicy.ALL if from_start else DeliverPolicy.NEW
    subscription = await js.subscribe(subject, ordered_consumer=True, deliver_policy=policy)
    try:
        async for msg in subscription.messages:
            event = json.loads(msg.data)
            aggregate = f"{event.get('subject')} v{event.get('streamversion')}"
            line = f"{event.get('time')}  {msg.subject}  {aggregate}"
            print(line + (f"  {json.dumps(event.get('data'))}" if with_data else ""), flush=True)
    finally:
        await client.close()
