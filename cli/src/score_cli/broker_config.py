"""The embedded broker's configuration in the data folder: passwords, readers, config files.

`score up` writes `nats/nats.conf` and `nats/auth.conf` before it starts nats-server, and
the users' passwords live in `broker-users.json`: all three readable by their owner only,
made on the first run and kept across runs. `score credentials` adds and removes readers
there, writes `auth.conf` again and asks the running server to reload it (its pid is in
`nats/nats-server.pid`). An expired reader is dropped whenever the file is written: at every
start, by `score up`'s housekeeping, and by every `score credentials` command.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import secrets
import signal
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from score_cli.broker import OPERATOR, USERS, Reader, render_auth, system_users

USERS_FILE = "broker-users.json"
NATS_DIR = "nats"
CONFIG_FILE = "nats.conf"
AUTH_FILE = "auth.conf"
PID_FILE = "nats-server.pid"
SERVER_NAME = "score"
"""The name `score up` gives its nats-server (`NatsServer(name=...)`)."""

_AUTH_HEADER = """\
Written by `score up` and `score credentials` from broker-users.json: edits are lost."""


def config_file(data_dir: Path) -> Path:
    return data_dir.absolute() / NATS_DIR / CONFIG_FILE


def pid_file(data_dir: Path) -> Path:
    return data_dir.absolute() / NATS_DIR / PID_FILE


@contextlib.contextmanager
def _locked(data_dir: Path) -> Iterator[None]:
    # `score credentials` and `score up`'s housekeeping may write at the same moment.
    data_dir.mkdir(parents=True, exist_ok=True)
    with (data_dir / f".{USERS_FILE}.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _write_private(path: Path, text: str) -> None:
    """Written whole to a new owner-only file and renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    written = path.with_name(f".{path.name}.new")
    written.unlink(missing_ok=True)
    descriptor = os.open(written, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
    written.replace(path)


def _load(data_dir: Path) -> dict[str, dict[str, object]]:
    path = data_dir / USERS_FILE
    if not path.exists():
        return {"passwords": {}, "readers": {}}
    loaded: dict[str, dict[str, object]] = json.loads(path.read_text())
    return loaded


def _save(data_dir: Path, state: dict[str, dict[str, object]]) -> None:
    _write_private(data_dir / USERS_FILE, json.dumps(state, indent=2))


def passwords(data_dir: Path) -> dict[str, str]:
    """Every system user's password, made (random) on first use and kept."""
    with _locked(data_dir):
        state = _load(data_dir)
        known = {name: str(value) for name, value in state["passwords"].items()}
        if any(name not in known for name in USERS):
            for name in USERS:
                known.setdefault(name, secrets.token_hex(24))
            state["passwords"] = dict(known)
            _save(data_dir, state)
        return known


def readers(data_dir: Path) -> list[Reader]:
    state = _load(data_dir)
    return [_reader(entry) for entry in state["readers"].values()]


def _reader(entry: object) -> Reader:
    assert isinstance(entry, dict)
    return Reader(
        name=entry["name"],
        password=entry["password"],
        subjects=tuple(entry["subjects"]),
        created_at=entry["created_at"],
        expires_at=entry.get("expires_at"),
    )


def expired(reader: Reader, now: dt.datetime | None = None) -> bool:
    if reader.expires_at is None:
        return False
    return dt.datetime.fromisoformat(reader.expires_at) <= (now or dt.datetime.now(dt.UTC))


def add_reader(data_dir: Path, reader: Reader) -> None:
    """Record a reader and write `auth.conf` again (not reloaded: see `reload`)."""
    with _locked(data_dir):
        state = _load(data_dir)
        if reader.name in state["readers"]:
            raise ValueError(f"a reader named {reader.name} exists: revoke it first")
        state["readers"][reader.name] = asdict(reader)
        _save(data_dir, state)
    write_config(data_dir)


def remove_reader(data_dir: Path, name: str) -> bool:
    """Forget a reader and write `auth.conf` again; whether it was known."""
    with _locked(data_dir):
        state = _load(data_dir)
        known = state["readers"].pop(name, None) is not None
        if known:
            _save(data_dir, state)
    write_config(data_dir)
    return known


def write_config(data_dir: Path) -> list[str]:
    """Write `nats.conf` and `auth.conf`, dropping expired readers; the names dropped.

    The ports and the store are the command line's (`NatsServer`); the files hold what the
    command line cannot: the users, and where the server writes its pid for reloads.
    """
    data_dir = data_dir.absolute()
    known = passwords(data_dir)
    with _locked(data_dir):
        state = _load(data_dir)
        current = [_reader(entry) for entry in state["readers"].values()]
        dropped = [reader.name for reader in current if expired(reader)]
        if dropped:
            for name in dropped:
                del state["readers"][name]
            _save(data_dir, state)
        users = system_users(known) + [r.user() for r in current if r.name not in dropped]
        nats_dir = data_dir / NATS_DIR
        _write_private(nats_dir / AUTH_FILE, render_auth(users, header=_AUTH_HEADER))
        _write_private(
            nats_dir / CONFIG_FILE,
            # The server's name too: a reload takes it from here, not from the command line.
            f"# Written by `score up`.\nserver_name: {json.dumps(SERVER_NAME)}\n"
            f"pid_file: {json.dumps(str(pid_file(data_dir)))}\n"
            f'include "{AUTH_FILE}"\n',
        )
    return dropped


def reload(data_dir: Path) -> bool:
    """Ask the running nats-server of the data folder to read its config again (SIGHUP, what
    `nats-server --signal reload` sends); whether one was running. Connections of users that
    are gone are closed by the server."""
    try:
        pid = int(pid_file(data_dir).read_text().strip())
    except (FileNotFoundError, ValueError):
        return False
    # A pid file left by a server that died may name some other process by now.
    with contextlib.suppress(FileNotFoundError):
        if b"nats-server" not in Path(f"/proc/{pid}/cmdline").read_bytes():
            return False
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        return False
    return True


def with_credentials(url: str, user: str, password: str) -> str:
    """`nats://host:port` with `user:password@`, unless the URL already carries a user."""
    parts = urlsplit(url)
    if parts.username or not parts.hostname:
        return url
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{parts.netloc}"
    return urlunsplit(parts._replace(netloc=netloc))


def operator_url(url: str, data_dir: Path) -> str:
    """The URL with the operator's credentials, if the data folder has a broker's users."""
    if not (data_dir / USERS_FILE).exists():
        return url
    return with_credentials(url, OPERATOR, passwords(data_dir)[OPERATOR])
