"""Settings of the notifications service, from `SCORE_*` environment variables."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from score_chassis.settings import ServiceSettings

DEFAULT_RETRY_SCHEDULE = "5,30,120,600,1800,3600,7200,14400,28800,28800"
"""Seconds to wait after each failed attempt: 11 attempts over about 23.7 hours."""


def _seconds(schedule: str) -> tuple[float, ...]:
    try:
        delays = tuple(float(part) for part in schedule.split(",") if part.strip())
    except ValueError:
        raise ValueError(f"not comma-separated seconds: {schedule!r}") from None
    if any(delay < 0 for delay in delays):
        raise ValueError("a delay cannot be negative")
    return delays


class NotificationsSettings(ServiceSettings):
    service_name: str = "notifications"
    http_port: int = 8104

    notifications_secret_key: SecretStr | None = Field(
        default=None,
        description="The key the webhook secrets are encrypted with at rest (at least 32 "
        "characters); `score up` makes one per data folder",
    )
    notifications_retry_schedule: str = Field(
        default=DEFAULT_RETRY_SCHEDULE,
        description="Seconds between a failed attempt and the next, comma-separated; after "
        "the last the notification fails (an event and a dead letter)",
    )
    notifications_timeout_seconds: float = Field(
        default=10.0, gt=0, description="Every webhook call and SMTP session is cut after this"
    )
    notifications_concurrency: int = Field(
        default=32, ge=1, description="Notifications being sent at once, overall"
    )
    notifications_per_endpoint: int = Field(
        default=4, ge=1, description="Notifications being sent at once to one host (or SMTP)"
    )
    notifications_poll_seconds: float = Field(
        default=0.1, gt=0, description="How often the sender looks for due notifications"
    )
    notifications_lease_seconds: float | None = Field(
        default=None,
        gt=0,
        description="How long a sender holds a notification it is sending; past this, one "
        "that died mid-call is taken to be gone and the notification is sent again (default: "
        "the timeout and 5 s)",
    )
    webhook_allowed_hosts: str = Field(
        default="",
        description="Comma-separated host names (or addresses) a webhook may name although "
        "they resolve to loopback, private, link-local or reserved addresses",
    )
    dashboard_url: str | None = Field(
        default=None,
        description="The link in every message; by default the indicators' dashboard on this "
        "host (port base + 3)",
    )
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_starttls: bool = Field(default=False, description="Upgrade the SMTP session with STARTTLS")
    smtp_tls: bool = Field(default=False, description="Connect to the SMTP server over TLS")
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_sender: str = "SCORE Bolivia <score-notificaciones@localhost>"

    @field_validator("notifications_retry_schedule")
    @classmethod
    def _a_schedule(cls, schedule: str) -> str:
        _seconds(schedule)
        return schedule

    @property
    def retry_schedule(self) -> tuple[float, ...]:
        return _seconds(self.notifications_retry_schedule)

    @property
    def allowed_hosts(self) -> frozenset[str]:
        return frozenset(
            host.strip().lower().strip("[]")
            for host in self.webhook_allowed_hosts.split(",")
            if host.strip()
        )

    @property
    def lease_seconds(self) -> float:
        """How long a notification being sent is held by its sender: past this, a sender that
        died mid-call is taken to be gone and another (or it, restarted) sends it again."""
        if self.notifications_lease_seconds is not None:
            return max(self.notifications_lease_seconds, self.notifications_timeout_seconds)
        return self.notifications_timeout_seconds + 5

    def dashboard(self) -> str:
        if self.dashboard_url:
            return self.dashboard_url
        return f"http://{self.http_host}:{self.http_port - 1}/"
