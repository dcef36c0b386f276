"""`score credentials`: NATS users for downstream readers of SCORE's streams.

A reader may create durable consumers named after itself on SCORE's streams, filtered to
the subjects it was given, fetch from them and acknowledge, and do nothing else (ADR 021).
For the embedded `score up` the reader is added to the data folder's `auth.conf` and the
running server reloads it; for compose, `--config-entry` prints the block to add to
`deploy/nats/auth.conf` instead (docs/operations.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import secrets
import sys
from pathlib import Path

from score_cli import broker_config
from score_cli.broker import Reader, check_subjects, inbox_prefix, reader_name, render_auth
from score_cli.datadir import running_system
from score_cli.tokens import duration
from score_cli.up import DEFAULT_DATA_DIR

DEFAULT_URL = "nats://127.0.0.1:4222"


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("credentials", help="NATS credentials for downstream readers")
    actions = parser.add_subparsers(title="actions", metavar="ACTION", required=True)

    create = actions.add_parser(
        "create",
        help="a reader of some subjects, and the URL it connects with",
        description="Make a NATS user that may read the subjects given, through durable "
        "consumers named after it, and nothing else. Printed once: keep the URL secret.",
    )
    create.add_argument(
        "--subjects",
        action="append",
        required=True,
        help="a subject filter, e.g. 'score.bo.santa_cruz.>' (repeat for several)",
    )
    create.add_argument("--ttl", type=duration, help="e.g. 90d; without it, until revoked")
    create.add_argument("--name", help="the reader's name (default: reader-<random>)")
    create.add_argument(
        "--nats-url",
        help="where the reader reaches the broker (default: the running `score up`'s)",
    )
    create.add_argument(
        "--config-entry",
        action="store_true",
        help="print the auth.conf block for a compose or cluster broker; change nothing here",
    )
    create.add_argument("--json", action="store_true", help="print the credentials as JSON")
    create.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    create.set_defaults(handler=run_create)

    list_ = actions.add_parser("list", help="the readers of the data folder")
    list_.add_argument("--json", action="store_true")
    list_.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    list_.set_defaults(handler=run_list)

    revoke = actions.add_parser("revoke", help="remove a reader; its connections are closed")
    revoke.add_argument("name")
    revoke.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    revoke.add_argument("--json", action="store_true", help="the reader revoked, as JSON")
    revoke.set_defaults(handler=run_revoke)


def new_reader(
    subjects: list[str], *, name: str | None = None, ttl: dt.timedelta | None = None
) -> Reader:
    """A reader with a random password; raises ValueError on a bad name or subject."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    return Reader(
        name=reader_name(name or secrets.token_hex(4)),
        password=secrets.token_hex(24),
        subjects=check_subjects(subjects),
        created_at=now.isoformat(),
        expires_at=(now + ttl).isoformat() if ttl is not None else None,
    )


def run_create(args: argparse.Namespace) -> int:
    try:
        reader = new_reader(args.subjects, name=args.name, ttl=args.ttl)
    except ValueError as error:
        print(f"score credentials: {error}", file=sys.stderr)
        return 2
    running = running_system(args.data_dir)
    base = args.nats_url or (running or {}).get("nats_url") or DEFAULT_URL
    url = broker_config.with_credentials(str(base), reader.name, reader.password)
    if args.config_entry:
        print(render_auth([reader.user()], header="Add this user to auth.conf's users:"))
    else:
        try:
            broker_config.add_reader(args.data_dir, reader)
        except ValueError as error:
            print(f"score credentials: {error}", file=sys.stderr)
            return 2
        reloaded = broker_config.reload(args.data_dir)
        if not reloaded:
            # On stderr: stdout is the reader's credentials alone, which `--json` makes JSON.
            print(
                "(no broker is running here: the reader can connect from the next `score up`)",
                file=sys.stderr,
            )
    _print_reader(reader, url, as_json=args.json)
    return 0


def _print_reader(reader: Reader, url: str, *, as_json: bool) -> None:
    body = {
        "name": reader.name,
        "url": url,
        "inbox_prefix": inbox_prefix(reader.name),
        "consumer_name": reader.name,
        "subjects": list(reader.subjects),
        "expires_at": reader.expires_at,
    }
    if as_json:
        print(json.dumps(body, indent=2))
        return
    print(f"url            {url}")
    print(f"inbox prefix   {body['inbox_prefix']}   (set it in the client: its replies go there)")
    print(f"consumer name  {reader.name}   (one durable per stream, filtered to the subjects)")
    print(f"subjects       {', '.join(reader.subjects)}")
    print(f"expires        {reader.expires_at or 'never (until revoked)'}")


def run_list(args: argparse.Namespace) -> int:
    readers = broker_config.readers(args.data_dir)
    rows = [
        {
            "name": r.name,
            "subjects": list(r.subjects),
            "created_at": r.created_at,
            "expires_at": r.expires_at,
            "state": "expired" if broker_config.expired(r) else "active",
        }
        for r in readers
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no readers")
    for row in rows:
        subjects = ", ".join(row["subjects"])  # type: ignore[arg-type]
        print(f"{row['name']}  {row['state']}  {subjects}  until {row['expires_at'] or 'revoked'}")
    return 0


def run_revoke(args: argparse.Namespace) -> int:
    try:
        name = reader_name(args.name)
    except ValueError as error:
        print(f"score credentials: {error}", file=sys.stderr)
        return 2
    if not broker_config.remove_reader(args.data_dir, name):
        print(f"score credentials: no reader named {name}", file=sys.stderr)
        return 1
    reloaded = broker_config.reload(args.data_dir)
    if args.json:
        print(json.dumps({"revoked": name, "server_reloaded": reloaded}))
        return 0
    print(f"revoked {name}")
    return 0
