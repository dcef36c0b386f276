"""`score tokens`: make and revoke the bearer tokens the services accept, and list the revoked.

Tokens are kept nowhere (each service verifies one with the key alone), so what can be listed
is what the services refuse: the ids in the `SCORE_REVOKED_TOKENS` bucket, with when each was
revoked. `--json` prints what a script needs of each.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import re
import sys
from pathlib import Path
from typing import Any

from nats.js.errors import BucketNotFoundError, KeyDeletedError, NoKeysError

from score_chassis.jetstream import NatsConnection
from score_chassis.tokens import REVOKED_BUCKET, ROLES, TokenAuthority, revoke
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
    create.add_argument("--json", action="store_true", help="the token and its claims, as JSON")
    create.set_defaults(handler=run_create)

    revoke_ = actions.add_parser("revoke", help="revoke a token in every service at once")
    revoke_.add_argument("token", help="the token, or its id (jti)")
    revoke_.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    revoke_.add_argument("--nats-url", help="default: the running `score up` of the data dir")
    revoke_.add_argument("--json", action="store_true", help="the id revoked, as JSON")
    revoke_.set_defaults(handler=run_revoke)

    list_ = actions.add_parser("list", help="the revoked tokens' ids, and when each was revoked")
    list_.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    list_.add_argument("--nats-url", help="default: the running `score up` of the data dir")
    list_.add_argument("--json", action="store_true", help="a JSON list, for scripts")
    list_.set_defaults(handler=run_list)


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
    if args.json:
        claims = authority.verify(token)
        body = {
            "token": token,
            "id": claims.token_id,
            "role": claims.role,
            "regions": list(claims.regions),
            "trainer_id": claims.trainer_id,
            "subject": claims.subject,
            "expires_at": claims.expires_at.isoformat(),
        }
        print(json.dumps(body, indent=2))
        return 0
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
    print(json.dumps({"revoked": token_id}) if args.json else f"revoked {token_id}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    url = nats_url(args.nats_url, args.data_dir, command="tokens")
    if url is None:
        return 2
    revoked = asyncio.run(_revoked(url))
    if args.json:
        print(json.dumps(revoked, indent=2))
        return 0
    if not revoked:
        print("no token is revoked")
    for entry in revoked:
        print(f"{entry['id']}  revoked {entry['revoked_at']}")
    return 0


async def _connected(nats_url: str) -> NatsConnection:
    connection = NatsConnection(nats_url, name="score-cli")
    connection.start()
    try:
        async with asyncio.timeout(10):
            await connection.ready.wait()
    except BaseException:
        await connection.close()
        raise
    return connection


async def _revoke(nats_url: str, token_id: str) -> None:
    connection = await _connected(nats_url)
    try:
        await revoke(connection, token_id)
    finally:
        await connection.close()


async def _revoked(nats_url: str) -> list[dict[str, Any]]:
    """Every revoked token's id and when it was revoked, oldest first."""
    connection = await _connected(nats_url)
    try:
        try:
            bucket = await connection.jetstream.key_value(REVOKED_BUCKET)
        except BucketNotFoundError:
            return []  # made at the first revocation
        try:
            ids = await bucket.keys()
        except NoKeysError:
            return []
        revoked = []
        for token_id in ids:
            try:
                entry = await bucket.get(token_id)
            except KeyDeletedError:
                continue
            when = (entry.value or b"").decode() or None
            revoked.append({"id": token_id, "revoked_at": when})
        return sorted(revoked, key=lambda e: e["revoked_at"] or "")
    finally:
        await connection.close()
