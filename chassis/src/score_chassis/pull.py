"""A durable JetStream consumer's messages, pulled ahead: sent by the server as they are stored.

nats-py's `PullSubscription.fetch` asks for each batch and then waits for each of its messages
with `asyncio.wait_for`: a task and two turns of the event loop per message. On a service whose
loop also answers HTTP, every turn waits for the requests in between: a batch of eight took
30 ms to fetch, and its first message had waited 90 ms since it was stored (B7, at 200
commands/s). Here a pull request stays open on the server, which sends each message as soon as
it is stored and the consumer has room for it; the subscription's callback puts it in a buffer,
with no turn of the loop of its own, and the consumer takes whatever has arrived (ADR 028).

JetStream's pull protocol, as nats.go's `Consume` speaks it: a request to
`$JS.API.CONSUMER.MSG.NEXT.<stream>.<durable>` names a batch, an expiry and a heartbeat, and is
answered on the requester's inbox by up to a batch of messages, a `100` heartbeat while idle, and
a `408` (expired) or `409` (ended otherwise: the durable deleted, its leader changed) when it
ends early.
"""

from __future__ import annotations

import asyncio
import json
import time

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import DEFAULT_PREFIX, Header, StatusCode
from nats.js.errors import NotFoundError

from score_chassis.logs import get_logger

log = get_logger(__name__)

MISSED_HEARTBEATS = 3
"""A request that has said nothing for this many heartbeats is taken for lost (the server went,
or the connection did), and another is made."""


class ConsumerGone(Exception):
    """The durable consumer was deleted while it was read (a rebuild makes it again)."""


class Pull:
    """The messages of a durable pull consumer, asked for ahead, at most `batch` at a time.

    A new request is made when the last one has been answered in full or has ended, and the
    buffer holds less than a batch: the messages received and not yet taken stay below two
    batches, and under the durable's `max_ack_pending`. Messages are never acknowledged here.
    """

    def __init__(
        self,
        client: Client,
        stream: str,
        durable: str,
        *,
        batch: int,
        expires: float = 30.0,
        heartbeat: float = 1.0,
    ) -> None:
        self._client = client
        self._stream, self._durable = stream, durable
        self._subject = f"{DEFAULT_PREFIX}.CONSUMER.MSG.NEXT.{stream}.{durable}"
        self._batch = batch
        self._expires = expires
        self._heartbeat = heartbeat
        self._buffer: list[Msg] = []
        self._arrived = asyncio.Event()
        self._outstanding = 0
        """Messages the open request may still bring (0: no request open)."""
        self._heard = time.monotonic()
        self._gone: str | None = None
        self._inbox = ""
        self._subscription: Subscription | None = None
        self._pause = 0.0
        """How long to wait before asking again after a refused request."""
        self._later: asyncio.TimerHandle | None = None
        self._asking: set[asyncio.Future[None]] = set()

    async def start(self) -> None:
        self._inbox = self._client.new_inbox()
        self._subscription = await self._client.subscribe(self._inbox, cb=self._received)
        await self._ask()

    async def take(self, *, within: float) -> list[Msg]:
        """The messages received and not taken yet, at most a batch; waits up to `within` seconds
        for one (then `TimeoutError`). Raises `ConsumerGone` if the durable was deleted."""
        if not self._buffer:
            self._arrived.clear()
            try:
                async with asyncio.timeout(within):
                    while not self._buffer and self._gone is None:
                        await self._arrived.wait()
                        self._arrived.clear()
            except TimeoutError:
                if time.monotonic() - self._heard > MISSED_HEARTBEATS * self._heartbeat:
                    await self._ask_again()
                raise
        if self._gone is not None and not self._buffer:
            raise ConsumerGone(self._gone)
        taken, self._buffer = self._buffer[: self._batch], self._buffer[self._batch :]
        await self._ask_if_room()
        return taken

    async def stop(self) -> None:
        """Stop reading; what was received and not taken is given back to the server at once
        (rather than after its `ack_wait`)."""
        subscription, self._subscription = self._subscription, None
        if self._later is not None:
            self._later.cancel()
            self._later = None
        for task in self._asking:
            task.cancel()
        if subscription is not None:
            try:
                await subscription.unsubscribe()
            except Exception as error:  # the connection is gone: nothing to give back
                log.debug("consumer.pull_unsubscribe_failed", error=type(error).__name__)
                self._buffer.clear()
        left, self._buffer = self._buffer, []
        for msg in left:
            try:
                await msg.nak()
            except Exception:  # given back after ack_wait instead
                break

    async def _ask_again(self) -> None:
        """The open request has gone quiet: lost with the server or the connection, or never
        taken (the durable deleted as it was made). Ask again if the durable is there."""
        try:
            await self._client.jetstream().consumer_info(self._stream, self._durable)
        except NotFoundError:
            self._gone = "consumer deleted"
            return
        log.info("consumer.pull_request_lost", stream=self._stream, durable=self._durable)
        self._outstanding = 0
        if self._later is None:
            await self._ask_if_room()

    async def _received(self, msg: Msg) -> None:
        self._heard = time.monotonic()
        status = msg.headers.get(Header.STATUS) if msg.headers and not msg.data else None
        if status is None:
            self._outstanding = max(0, self._outstanding - 1)
            self._pause = 0.0
            self._buffer.append(msg)
            self._arrived.set()
        elif status == StatusCode.CONTROL_MESSAGE:
            return  # a heartbeat: the request is alive
        elif status == StatusCode.REQUEST_TIMEOUT:
            self._outstanding = 0  # expired, as requests do while nothing comes
        else:
            # Ended otherwise: a 409 (why, in the description) or a 503 (no leader to take it).
            self._outstanding = 0
            description = str((msg.headers or {}).get(Header.DESCRIPTION, ""))
            if status == StatusCode.CONFLICT and "deleted" in description.lower():
                self._gone = description
                self._arrived.set()
                return
            log.debug("consumer.pull_request_ended", status=status, reason=description)
            # Asked again after a pause that doubles while the refusals go on, not at once: a
            # stream without a leader would answer each request as fast as it came.
            self._pause = min(max(2 * self._pause, 0.05), self._heartbeat)
            self._later = asyncio.get_running_loop().call_later(self._pause, self._ask_later)
            return
        await self._ask_if_room()

    def _ask_later(self) -> None:
        self._later = None
        task = asyncio.ensure_future(self._ask_if_room())
        self._asking.add(task)
        task.add_done_callback(self._asked)

    def _asked(self, task: asyncio.Future[None]) -> None:
        self._asking.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            # The connection went meanwhile: the request is made again when the pull finds
            # itself unheard (`take`).
            log.debug("consumer.pull_request_failed", error=type(error).__name__)

    async def _ask_if_room(self) -> None:
        if (
            self._outstanding == 0
            and self._later is None
            and len(self._buffer) < self._batch
            and self._gone is None
        ):
            await self._ask()

    async def _ask(self) -> None:
        if self._subscription is None:
            return
        request = {
            "batch": self._batch,
            "expires": int(self._expires * 1e9),
            "idle_heartbeat": int(self._heartbeat * 1e9),
        }
        self._outstanding = self._batch
        self._heard = time.monotonic()
        await self._client.publish(self._subject, json.dumps(request).encode(), self._inbox)
