"""The demo's stand-ins for the chambers' endpoints: a webhook sink and an SMTP sink.

The webhook sink is an HTTP server on 127.0.0.1 that verifies every request with the
`standardwebhooks` library against the secret its subscription was answered, as a chamber's
receiver would, and keeps only what verifies; a request that does not verify is answered 400
and counted. The SMTP sink is an `aiosmtpd` server on 127.0.0.1 that keeps every message.
What either receives goes into one `Inbox`, by the notification's id (`webhook-id`, or the
mail's `X-SCORE-Notification`), so a notification sent again after a crash is kept once; the
inbox can be kept in a file, so a demo run again on the same data folder still shows what
earlier runs received.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

from aiosmtpd.controller import Controller
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from score_cli.nats_server import LOOPBACK, free_port

HOOKS_PATH = "/demo-hooks/"
"""A webhook sink's URLs: this and the key of the subscription it is for."""


@dataclass(frozen=True)
class Received:
    """One notification as a sink received it."""

    kind: Literal["webhook", "email"]
    notification_id: str
    """The `webhook-id` (verified with the subscription's secret), or the mail's
    `X-SCORE-Notification`: the same at every attempt."""
    to: str
    """The webhook sink's key, or the mail's recipients."""
    subject: str
    text: str
    language: str | None
    received_at: str

    @classmethod
    def from_json(cls, values: dict[str, Any]) -> Received:
        return cls(**values)


class Inbox:
    """What the sinks received, by notification id; kept in `path` (JSON lines) if given.

    Thread-safe: the webhook sink's request threads and the SMTP sink's event loop add to it
    while the demo reads it.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._received: dict[str, Received] = {}
        self.repeats = 0
        """Notifications received again (a resend after a crash): kept once."""
        self._lock = threading.Condition()
        self.on_arrival: Callable[[Received], None] | None = None
        """Called (from the sink's thread) with each notification new to the inbox."""
        if path is not None and path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    earlier = Received.from_json(json.loads(line))
                    self._received[earlier.notification_id] = earlier

    def add(self, received: Received) -> None:
        with self._lock:
            if received.notification_id in self._received:
                self.repeats += 1
                return
            self._received[received.notification_id] = received
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a", encoding="utf-8") as file:
                    file.write(json.dumps(asdict(received), ensure_ascii=False) + "\n")
            self._lock.notify_all()
        if self.on_arrival is not None:
            self.on_arrival(received)

    def get(self, notification_id: str) -> Received | None:
        with self._lock:
            return self._received.get(notification_id)

    def all(self) -> list[Received]:
        with self._lock:
            return list(self._received.values())


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class WebhookSink:
    """A chamber's webhook receiver on 127.0.0.1: `url(key)` is where a subscription points;
    `secrets[key]` is what the request to it must verify with."""

    def __init__(self, inbox: Inbox, *, port: int | None = None) -> None:
        self.inbox = inbox
        self.secrets: dict[str, str] = {}
        self.refused: list[str] = []
        """Why each refused request was refused (a bad signature, an unknown key)."""
        self._server = _bind(port, _handler(self))
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="demo-webhook-sink", daemon=True
        )

    def url(self, key: str) -> str:
        return f"http://{LOOPBACK}:{self.port}{HOOKS_PATH}{key}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()

    def receive(self, path: str, headers: dict[str, str], body: bytes) -> int:
        """Verify one request and keep it; the status to answer."""
        key = path.removeprefix(HOOKS_PATH) if path.startswith(HOOKS_PATH) else None
        secret = self.secrets.get(key or "")
        if secret is None:
            self.refused.append(f"no subscription at {path}")
            return 404
        try:
            event = Webhook(secret).verify(body, headers)
        except WebhookVerificationError as error:
            self.refused.append(f"{key}: {error}")
            return 400
        message = event["data"]["message"]
        self.inbox.add(
            Received(
                kind="webhook",
                notification_id=headers["webhook-id"],
                to=str(key),
                subject=str(message["subject"]),
                text=str(message["text"]),
                language=message.get("language"),
                received_at=_now(),
            )
        )
        return 204


def _bind(port: int | None, handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    """The server on `port` if it is free (the one an earlier run used, so its subscriptions
    still point here), else on any free port."""
    if port:
        with contextlib.suppress(OSError):
            return ThreadingHTTPServer((LOOPBACK, port), handler)
    return ThreadingHTTPServer((LOOPBACK, 0), handler)


def _handler(sink: WebhookSink) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            headers = {name.lower(): value for name, value in self.headers.items()}
            status = sink.receive(self.path, headers, body)
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the demo prints what arrives; the request lines are noise

    return Handler


class SmtpSink:
    """An SMTP server on 127.0.0.1 (`aiosmtpd`) keeping every message in the inbox."""

    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox
        self.port = free_port()
        self._controller = Controller(_Mailbox(inbox), hostname=LOOPBACK, port=self.port)

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        with contextlib.suppress(AssertionError):  # never started
            self._controller.stop()


class _Mailbox:
    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        mail = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(mail, EmailMessage)
        plain = mail.get_body(preferencelist=("plain",))
        text = plain.get_content().strip() if plain is not None else ""
        self.inbox.add(
            Received(
                kind="email",
                notification_id=str(mail.get("X-SCORE-Notification") or mail["Message-ID"]),
                to=", ".join(envelope.rcpt_tos),
                subject=str(mail["Subject"]),
                text=text,
                language=None,
                received_at=_now(),
            )
        )
        return "250 OK"


@dataclass
class Sinks:
    """Both sinks and their inbox."""

    inbox: Inbox
    webhooks: WebhookSink
    smtp: SmtpSink

    def environment(self, given: dict[str, str]) -> dict[str, str | None]:
        """What the notifications service needs to reach the sinks: 127.0.0.1 added to the
        webhooks' allowed hosts (`given`'s kept), and its SMTP settings pointing at the SMTP
        sink, plain and without credentials (None: left out of the environment)."""
        allowed = [h.strip() for h in given.get("SCORE_WEBHOOK_ALLOWED_HOSTS", "").split(",")]
        hosts = [h for h in allowed if h and h != LOOPBACK] + [LOOPBACK]
        return {
            "SCORE_WEBHOOK_ALLOWED_HOSTS": ",".join(hosts),
            "SCORE_SMTP_HOST": LOOPBACK,
            "SCORE_SMTP_PORT": str(self.smtp.port),
            "SCORE_SMTP_STARTTLS": "false",
            "SCORE_SMTP_TLS": "false",
            "SCORE_SMTP_USERNAME": None,
            "SCORE_SMTP_PASSWORD": None,
        }

    def received(self, ids: Iterable[str]) -> list[Received]:
        return [r for r in (self.inbox.get(i) for i in ids) if r is not None]


@contextlib.contextmanager
def running_sinks(inbox: Inbox, *, webhook_port: int | None = None) -> Iterator[Sinks]:
    """Both sinks, started; stopped on leaving."""
    webhooks = WebhookSink(inbox, port=webhook_port)
    smtp = SmtpSink(inbox)
    try:
        webhooks.start()
        smtp.start()
        yield Sinks(inbox, webhooks, smtp)
    finally:
        smtp.stop()
        webhooks.stop()
