"""Settings every service shares, from `SCORE_*` environment variables or a `.env` file."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_TIMEZONE = "America/La_Paz"
DEFAULT_PROGRAMME_START = dt.date(2013, 1, 1)
"""SCORE began in Bolivia in 2013: no business date of its records is earlier."""
DEFAULT_PLANNING_HORIZON_DAYS = 366
DEFAULT_MAX_BODY_BYTES = 1024 * 1024


class ServiceSettings(BaseSettings):
    """Base settings; each service subclasses it to set its name and port."""

    model_config = SettingsConfigDict(env_prefix="SCORE_", env_file=".env", extra="ignore")

    service_name: str = "service"
    database_url: str = Field(
        default="sqlite+aiosqlite:///./score.db",
        description="SQLAlchemy async URL: sqlite+aiosqlite:///path or postgresql+asyncpg://…",
    )
    nats_url: str = Field(
        default="nats://127.0.0.1:4222",
        description="May carry the NATS user as `nats://user:password@host:port`",
    )
    nats_user: str | None = Field(
        default=None, description="The service's NATS user (ADR 021), with `nats_password`"
    )
    nats_password: SecretStr | None = None
    nats_creds: Path | None = Field(
        default=None, description="A NATS `.creds` file (JWT and nkey), instead of a password"
    )
    auth_secret: SecretStr | None = Field(
        default=None,
        description="The key tokens are signed with (≥ 32 characters), the same in every "
        "service; `score up` makes one per data folder.",
    )
    http_host: str = "127.0.0.1"
    http_port: int = 8100
    public_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^/?#]+(/[^?#]*)?$",
        description="Where clients and consumers reach the service (a proxy's address, if it "
        "is behind one), named by `dataschema` and by problem types; by default "
        "`http://<http_host>:<http_port>` (a wildcard bind as `localhost`)",
    )
    public_nats_url: str | None = Field(
        default=None,
        description="The NATS address the service's AsyncAPI document gives consumers; by "
        "default `nats_url`'s host and port (never its user and password)",
    )
    country: str = Field(default="bo", pattern=r"^[a-z]{2}$")
    timezone: str = Field(
        default=DEFAULT_TIMEZONE,
        description="The IANA zone whose calendar business dates follow (the default 'today')",
    )
    programme_start: dt.date = Field(
        default=DEFAULT_PROGRAMME_START,
        description="The programme's first day: business dates before it are refused",
    )
    planning_horizon_days: int = Field(
        default=DEFAULT_PLANNING_HORIZON_DAYS,
        ge=1,
        le=3660,
        description="How far ahead of today a planned date (a visit's day) may lie",
    )
    max_body_bytes: int = Field(
        default=DEFAULT_MAX_BODY_BYTES,
        ge=1024,
        description="Larger request bodies are refused with 413 before they are read",
    )
    http_request_seconds: float = Field(
        default=30.0,
        gt=0,
        description="A request's head and body must arrive within this many seconds of its "
        "connection opening (or its previous request being answered): else 408, hung up on",
    )
    http_max_head_bytes: int = Field(
        default=64 * 1024,
        ge=4096,
        description="Larger request lines and headers are refused with 431",
    )
    stream_replicas: int = Field(default=1, ge=1, le=5)
    migrate_on_start: bool = Field(
        default=True,
        description="Bring the database to the newest schema at start; false where a deploy "
        "runs `score migrate` first (docker compose does)",
    )
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: str = "info"

    def public_base_url(self) -> str:
        """The service's public address, without a trailing slash."""
        if self.public_url is not None:
            return self.public_url.rstrip("/")
        return base_url_of(self.http_host, self.http_port)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {name!r}, e.g. America/La_Paz") from None
        return name

    relay_batch_size: int = Field(default=500, ge=1)
    relay_poll_seconds: float = Field(default=1.0, gt=0)
    consumer_batch_size: int = Field(default=200, ge=1)
    consumer_max_deliver: int = Field(default=5, ge=1)
    consumer_ack_wait_seconds: float = Field(default=30.0, gt=0)
    idempotency_ttl_hours: float = Field(
        default=24.0, gt=0, description="How long an Idempotency-Key is remembered"
    )


def base_url_of(host: str, port: int) -> str:
    """The address a service bound to `host:port` answers at: a wildcard bind address
    (`0.0.0.0`, `::`) is no address to give anyone, so it becomes `localhost`."""
    host = "localhost" if host in ("", "0.0.0.0", "::") else host
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{port}"
