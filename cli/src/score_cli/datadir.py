"""What a data folder keeps besides the services' data: the token key and where the
running system can be reached."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

SECRET_FILE = "auth-secret"
SYSTEM_FILE = "system.json"


def auth_secret(data_dir: Path) -> str:
    """The data folder's token key, made on first use and readable by its owner only."""
    path = data_dir / SECRET_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def write_system(data_dir: Path, *, nats_url: str, services: dict[str, str]) -> None:
    """Record where the running system listens, for `score tokens revoke` and friends."""
    (data_dir / SYSTEM_FILE).write_text(
        json.dumps({"nats_url": nats_url, "services": services}, indent=2)
    )


def forget_system(data_dir: Path) -> None:
    (data_dir / SYSTEM_FILE).unlink(missing_ok=True)


def running_system(data_dir: Path) -> dict[str, object] | None:
    path = data_dir / SYSTEM_FILE
    if not path.exists():
        return None
    loaded: dict[str, object] = json.loads(path.read_text())
    return loaded
