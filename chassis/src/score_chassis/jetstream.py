"""The NATS connection every service keeps, and the provisioning of JetStream streams.

A service must run while NATS is down (writes land in the outbox, reads are served from
its own store), so the connection is made in the background and re-made forever.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError, ServerError

from score_chassis.logs import get_logger
from score_chassis.tasks import cancel_until_done
from score_contracts.subjects import StreamSpec

log = get_logger(__name__)

DUPLICATE_WINDOW_SECONDS = 600.0
"""JetStream drops a message whose Nats-Msg-Id it saw within this window (≥ 2 minutes)."""


def stream_config(spec: StreamSpec, *, replicas: int = 1) -> StreamConfig:
    """The public history of a context: file storage, kept forever, de-duplicated by id."""
    return StreamConfig(
        name=spec.name,
        subjects=list(spec.subjects),
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        max_age=0,
        duplicate_window=DUPLICATE_WINDOW_SECONDS,
        num_replicas=replicas,
    )


STORE_ATTEMPTS = 5


async def ensure_stream(
    js: JetStreamContext, spec: StreamSpec, *, replicas: int = 1, update_existing: bool = True
) -> None:
    """Create the stream, or bring an existing one to our configuration.

    Only the producer updates (`update_existing`): a consumer or a tool that merely needs the
    stream to exist creates it when missing and otherwise leaves its configuration alone, so
    that, say, a tool run with default settings does not scale a cluster's R3 stream to R1.
    """
    config = stream_config(spec, replicas=replicas)
    try:
        for attempt in range(STORE_ATTEMPTS):
            try:
                await js.add_stream(config)
                break
            except ServerError as error:
                # 10049: the store of a stream of that name, just deleted, is not gone yet.
                if error.err_code != 10049 or attempt == STORE_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(0.1 * (attempt + 1))
    except BadRequestError as error:
        # 10058: the stream exists with a different configuration.
        if error.err_code != 10058:
            raise
        if update_existing:
            await js.update_stream(config)


def inbox_prefix(user: str) -> str:
    """Where a NATS user's replies arrive: `_INBOX_<user>`, the only inbox the broker lets it
    subscribe to (ADR 021), so that no other user can listen to its answers."""
    return f"_INBOX_{user}"


def servers(url: str) -> list[str]:
    """The servers of a NATS URL: one, or a cluster's nodes separated by commas
    (`nats://n1:4222,nats://n2:4222`), the form the NATS tools take. A client given several
    tries the next when one is down, at its first connection as at a reconnection, rather
    than waiting for the one it was told of."""
    return [server.strip() for server in url.split(",") if server.strip()]


def redacted(url: str) -> str:
    """The URL (each server of it) without the password it may carry, for logs."""
    shown = []
    for server in servers(url):
        parts = urlsplit(server)
        if parts.password is not None:
            netloc = f"{parts.username}:***@{parts.netloc.rpartition('@')[2]}"
            server = urlunsplit(parts._replace(netloc=netloc))
        shown.append(server)
    return ",".join(shown)


class NatsConnection:
    """Connects in the background and reconnects forever; `ready` is set while connected.

    As `user` with `password` (or as the user of the URL's `user:password@`), or with a
    `.creds` file; a user's replies come to its own inbox prefix (`inbox_prefix`). The URL may
    name several servers (`servers`): the client moves to another when the one it is on goes,
    and logs in to each with the same credentials.
    """

    def __init__(
        self,
        url: str,
        *,
        name: str,
        user: str | None = None,
        password: str | None = None,
        creds: Path | None = None,
    ) -> None:
        self.url = url
        self.name = name
        # The first server that carries `user:password@` speaks for the others: nats-py would
        # otherwise log in to a node named without them as nobody.
        carrying = next((p for p in map(urlsplit, servers(url)) if p.username), None)
        self.user = user or (unquote(carrying.username or "") if carrying else None)
        if password is None and carrying is not None and carrying.password is not None:
            if unquote(carrying.username or "") == self.user:
                password = unquote(carrying.password)
        self._password = password
        self._creds = creds
        self.ready = asyncio.Event()
        self._client: Client | None = None
        self._jetstream: JetStreamContext | None = None
        self._task: asyncio.Task[None] | None = None
        self._on_connect: list[Any] = []

    @property
    def client(self) -> Client:
        if self._client is None:
            raise ConnectionError("not connected to NATS yet")
        return self._client

    @property
    def jetstream(self) -> JetStreamContext:
        """One context for the connection's life: its asynchronous publishes share one
        subscription for their acks, which each new context would make again."""
        if self._jetstream is None:
            self._jetstream = self.client.jetstream()
        return self._jetstream

    @property
    def connected(self) -> bool:
        return self._client is not None and self._client.is_connected

    def start(self) -> None:
        self._task = asyncio.create_task(self._connect_forever(), name=f"nats-connect-{self.name}")

    async def _connect_forever(self) -> None:
        delay = 0.2
        while True:
            credentials: dict[str, Any] = {}
            if self._password is not None and self.user is not None:
                credentials.update(user=self.user, password=self._password)
            if self._creds is not None:
                credentials["user_credentials"] = str(self._creds)
            if self.user is not None:
                credentials["inbox_prefix"] = inbox_prefix(self.user)
            try:
                self._client = await nats.connect(
                    servers(self.url),
                    name=self.name,
                    **credentials,
                    connect_timeout=2,
                    reconnect_time_wait=0.5,
                    max_reconnect_attempts=-1,
                    allow_reconnect=True,
                    disconnected_cb=self._disconnected,
                    reconnected_cb=self._reconnected,
                    error_cb=self._error,
                )
            except Exception as error:  # any failure means: try again later
                log.warning(
                    "nats.connect_failed", url=redacted(self.url), error=str(error), retry_in=delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            log.info("nats.connected", url=redacted(self.url), user=self.user)
            self.ready.set()
            return

    async def _disconnected(self) -> None:
        self.ready.clear()
        log.warning("nats.disconnected")

    async def _reconnected(self) -> None:
        self.ready.set()
        log.info("nats.reconnected")

    async def _error(self, error: Exception) -> None:
        log.debug("nats.error", error=str(error))

    async def close(self) -> None:
        if self._task is not None:
            await cancel_until_done(self._task)
        if self._client is not None and not self._client.is_closed:
            # close, not drain: what was fetched and not acknowledged is redelivered anyway,
            # and draining a pull subscription waits out its timeout. But flushed first: an
            # ack is sent without waiting for an answer, and one still buffered when the
            # connection closes is lost, its message delivered again only after ack_wait.
            with contextlib.suppress(Exception):
                await self._client.flush(timeout=1)
            with contextlib.suppress(Exception):
                await self._client.close()
