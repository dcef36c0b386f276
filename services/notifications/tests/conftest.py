"""The notifications service's tests: a local webhook receiver that verifies every signature
with `standardwebhooks`, a local SMTP server (`aiosmtpd`), and the app on a real
nats-server, fed `milestone_reached` on a real `SCORE_INDICATORS` stream."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from fastapi import FastAPI
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from score_contracts.envelope import Envelope
from score_contracts.events import MilestoneReached
from score_contracts.examples import example_envelope
from score_contracts.ids import uuid7
from score_notifications.main import build_app
from score_notifications.settings import NotificationsSettings
from score_testing.nats import free_port
from score_testing.service import TEST_SECRET, bearer, serving
from score_testing.streams import publish_envelopes, wait_for

TEST_KEY = "test-key-for-the-webhook-secrets-0123456789"
ADMIN = bearer("admin")


def settings(tmp_path: Path, nats_url: str | None = None, **changes: Any) -> NotificationsSettings:
    values: dict[str, Any] = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'notifications.db'}",
        "nats_url": nats_url or f"nats://127.0.0.1:{free_port()}",
        "auth_secret": TEST_SECRET,
        "notifications_secret_key": TEST_KEY,
        "webhook_allowed_hosts": "127.0.0.1",
        "notifications_retry_schedule": "0.1,0.2",
        "notifications_timeout_seconds": 2.0,
        "notifications_poll_seconds": 0.05,
        "dashboard_url": "http://127.0.0.1:8103/",
        "log_format": "console",
        **changes,
    }
    return NotificationsSettings(**values)


@pytest.fixture
def app(tmp_path: Path) -> FastAPI:
    """The app on SQLite, NATS absent: the API alone."""
    return build_app(settings(tmp_path))


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(app) as client:
        yield client


# The webhook receiver.


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float
    """`loop.time()` when it arrived."""

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A chamber's endpoint: answers each POST with the next status of `statuses` (then
    `otherwise`), keeping only what verifies with `secret` in `received`."""

    secret: str | None = None
    statuses: list[int] = field(default_factory=list)
    otherwise: int = 200
    hang: bool = False
    """Answer nothing, ever: the sender's timeout (or a kill) ends the call."""
    received: list[Received] = field(default_factory=list)
    unverified: list[Received] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/score"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def wait(self, count: int, within: float = 10.0) -> list[Received]:
        async with asyncio.timeout(within):
            while len(self.received) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return self.received

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    name, value = line.split(":", 1)
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            got = Received(headers, body, asyncio.get_running_loop().time())
            try:
                if self.secret is None:
                    raise WebhookVerificationError("no secret to verify with")
                Webhook(self.secret).verify(body, headers)
                self.received.append(got)
            except WebhookVerificationError:
                self.unverified.append(got)
            self._arrived.set()
            if self.hang:
                await reader.read()  # until the caller gives up, or dies
            status = self.statuses.pop(0) if self.statuses else self.otherwise
            writer.write(
                f"HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".encode()
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    made = Receiver()
    await made.start()
    try:
        yield made
    finally:
        await made.stop()


# The SMTP server.


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append((list(envelope.rcpt_tos), parsed))
        return "250 OK"


@dataclass
class SmtpServer:
    port: int
    mailbox: Mailbox

    async def wait(self, count: int, within: float = 10.0) -> list[tuple[list[str], EmailMessage]]:
        await wait_for(lambda: len(self.mailbox.messages) >= count, within=within)
        return self.mailbox.messages


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield SmtpServer(port, mailbox)
    finally:
        controller.stop()


# Milestones on the stream.


def milestone(
    scope: str = "tarija",
    indicator: str = "enterprises_trained",
    threshold: str = "1",
    value: str | None = None,
    *,
    phase: str | None = None,
    reached_at: dt.datetime | None = None,
) -> MilestoneReached:
    return MilestoneReached(
        milestone_id=uuid7(),
        indicator=indicator,
        scope=scope,
        threshold=Decimal(threshold),
        value=Decimal(value or threshold),
        reached_at=reached_at or dt.datetime(2026, 3, 3, 15, 0, tzinfo=dt.UTC),
        phase=phase,
    )


async def announce(
    nats_url: str, *milestones: MilestoneReached | Envelope[MilestoneReached], again: bool = False
) -> list[Envelope[MilestoneReached]]:
    """Publish `milestone_reached` for each (an envelope as it is, to publish it again), as
    the indicators' relay does; the envelopes."""
    envelopes = [m if isinstance(m, Envelope) else example_envelope(m) for m in milestones]
    for envelope in envelopes:
        scope = envelope.data.scope
        region = None if scope == "national" else scope
        await publish_envelopes(nats_url, [envelope], region=region, again=again)
    return envelopes


async def subscribe(
    client: httpx.AsyncClient,
    *,
    regions: list[str] | None = None,
    national: bool = False,
    channel: dict[str, Any],
    language: str | None = None,
    chamber: str = "Cámara de Tarija",
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "chamber": chamber,
        "regions": ["tarija"] if regions is None else regions,
        "national": national,
        "channel": channel,
    }
    if language is not None:
        body["language"] = language
    response = await client.post("/v1/subscriptions", json=body, headers=headers or ADMIN)
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


def webhook_to(receiver: Receiver, secret: str | None = None) -> dict[str, Any]:
    channel: dict[str, Any] = {"kind": "webhook", "url": receiver.url}
    if secret is not None:
        channel["secret"] = secret
    return channel


async def deliveries_of(client: httpx.AsyncClient, subscription_id: str) -> list[dict[str, Any]]:
    response = await client.get(
        "/v1/deliveries", params={"subscription_id": subscription_id}, headers=ADMIN
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


Waiter = Callable[..., Any]
