"""`score tokens`: make and revoke the bearer tokens the services accept."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import re
import sys
from pathlib import Path

from score_chassis.jetstream import NatsConnection
from score_chassis.tokens import ROLES, TokenAuthority, revoke
from score_cli.datadir import auth_secret, nats_url
from score_cli.up import DEFAULT_DATA_DIR

_DURATION = re.compile(r"^(\d+)([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def duration(text: str) -> dt.timedelta:
    """`90m`, `12h`, `30d`, `2w`."""
    match = _DURATION.match(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 90m, 12h, 30d or 2w")
    return dt.timedelta(**{_UNITS[match[2]]: int(match[1])})


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("tokens", help="make or revoke bearer tokens")
    actions = parser.add_subparsers(title="actions", metavar="ACTION", required=True)

    create = actions.add_parser("create", help="print a new token")
    create.add_argument("--role", required=True, choices=ROLES)
    create.add_argument(
        "--region",
        action="append",
        default=[],
        help="a region a chamber token is bound to (repeat for several)",
    )
    create.add_argument("--trainer", help="the trainer id a trainer token acts for (required)")
    create.add_argument("--ttl", type=duration, default=duration("30d"), help="e.g. 12h, 30d")
    create.add_argument("--subject", help="who the token is for (default: role and token id)")
    create.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    create.set_defaults(handler=run_create)

    revoke_ = actions.add_parser("revoke", help="revoke a token in every service at once")
    revoke_.add_argument("token", help="the token, or its id (jti)")
    revoke_.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    revoke_.add_argument("--nats-url", help="default: the running `score up` of the data dir")
    revoke_.set_defaults(handler=run_revoke)


def run_create(args: argparse.Namespace) -> int:
    authority = TokenAuthority(auth_secret(args.data_dir))
    try:
        token = authority.issue(
            args.role,
            regions=args.region,
            ttl=args.ttl,
            subject=args.subject,
            trainer_id=args.trainer,
        )
    except ValueError as error:
        print(f"score tokens: {error}", file=sys.stderr)
        return 2
    print(token)
    return 0


def run_revoke(args: argparse.Namespace) -> int:
    token_id = args.token
    if token_id.count(".") == 2:  # a whole token: take its id
        token_id = TokenAuthority(auth_secret(args.data_dir)).verify(args.token).token_id
    url = nats_url(args.nats_url, args.data_dir, command="tokens")
    if url is None:
        return 2
    asyncio.run(_revoke(url, token_id))
    print(f"revoked {token_id}")
    return 0


async def _revoke(nats_url: str, token_id: str) -> None:
    connection = NatsConnection(nats_url, name="score-cli")
    connection.start()
    try:
        async with asyncio.timeout(10):
            await connection.ready.wait()
        await revoke(connection, token_id)
    finally:
        await connection.close()
