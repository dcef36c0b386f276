"""What a data folder keeps besides the services' data: the token key and where the
running system can be reached."""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import sys
from pathlib import Path

from score_chassis.tokens import TokenAuthority
from score_cli.broker_config import operator_url

SECRET_FILE = "auth-secret"
NOTIFICATIONS_KEY_FILE = "notifications-key"
SYSTEM_FILE = "system.json"


def auth_secret(data_dir: Path) -> str:
    """The data folder's token key, made on first use and readable by its owner only."""
    return _kept_secret(data_dir, SECRET_FILE)


def notifications_key(data_dir: Path) -> str:
    """The data folder's key for the webhooks' secrets at rest, made like the token key."""
    return _kept_secret(data_dir, NOTIFICATIONS_KEY_FILE)


def _kept_secret(data_dir: Path, name: str) -> str:
    path = data_dir / name
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def write_system(
    data_dir: Path,
    *,
    nats_url: str,
    services: dict[str, str],
    children: dict[str, dict[str, object]] | None = None,
) -> None:
    """Record where the running system listens, for `score tokens revoke` and friends, and
    what became of each of its processes (restarts, last exit, given up), for `score doctor`.

    Written whole to a new file and renamed into place: a reader never sees half of it.
    """
    body = {
        "nats_url": nats_url,
        "services": services,
        "children": children or {},
        # Where the operator's NATS credentials are, for whoever reads this file.
        "data_dir": str(data_dir.absolute()),
    }
    written = data_dir / f".{SYSTEM_FILE}.new"
    written.write_text(json.dumps(body, indent=2))
    written.replace(data_dir / SYSTEM_FILE)


def forget_system(data_dir: Path) -> None:
    (data_dir / SYSTEM_FILE).unlink(missing_ok=True)


def running_system(data_dir: Path) -> dict[str, object] | None:
    path = data_dir / SYSTEM_FILE
    if not path.exists():
        return None
    loaded: dict[str, object] = json.loads(path.read_text())
    return loaded


def admin_token(data_dir: Path, *, ttl: dt.timedelta, subject: str) -> str:
    """A token for the operator, signed with the data folder's key."""
    return TokenAuthority(auth_secret(data_dir)).issue("admin", ttl=ttl, subject=subject)


def database_url(data_dir: Path, service: str) -> str:
    """Where `score up` keeps a service's SQLite database."""
    return f"sqlite+aiosqlite:///{data_dir.absolute() / f'{service}.db'}"


def nats_url(given: str | None, data_dir: Path, *, command: str) -> str | None:
    """The NATS URL given, or the one of the running `score up`; None, said why, if neither.

    With the operator's credentials from the data folder, unless the URL carries a user.
    """
    url = given or (running_system(data_dir) or {}).get("nats_url")
    if not url:
        print(
            f"score {command}: no running system in the data dir; pass --nats-url", file=sys.stderr
        )
        return None
    return operator_url(str(url), data_dir)
