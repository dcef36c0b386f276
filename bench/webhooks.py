"""B7's webhook receiver: a chamber's endpoint, timing each notification as it arrives.

It runs in a process of its own, as the sender and the pollers do (`bench/freshness.py`), so
that its timestamps are not held up by theirs: an asyncio server on 127.0.0.1 with a lean
HTTP/1.1 reader, which takes the moment the whole request has arrived on `time.monotonic()`
(the machine's one clock, which the parent sets beside the 201s), and only then verifies the
signature with `standardwebhooks`, as the chamber's own code would (docs/notifications.md),
and answers 204. A notification whose signature fails is answered 400 and kept as unverified:
the harness counts it, and the service will try it again.

Over the pipe: the child says the port it listens on; the parent subscribes, runs the load,
and once the milestones have settled says how many notifications to wait for and until when;
the child sends back what arrived.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection

import uvloop
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from score_cli.nats_server import LOOPBACK

GRACE_SECONDS = 1.0
"""How long the receiver keeps listening once every notification awaited has come: a repeat
would come in that time (or, after a crash, a lease later: not within a bench run)."""


@dataclass(frozen=True, slots=True)
class Arrival:
    """One webhook call: when it arrived, its `webhook-id`, and the milestone it told of."""

    at: float
    webhook_id: str
    verified: bool
    milestone_id: str | None = None
    indicator: str | None = None
    scope: str | None = None
    threshold: str | None = None
    recorded: float | None = None
    """When the indicators service recorded the milestone (`reached_at`), and when the
    notifications service signed the call (`timestamp`), on `at`'s clock: read from the
    system's clock, less what it was ahead of `time.monotonic()` at the arrival."""
    signed: float | None = None


@dataclass(frozen=True, slots=True)
class Receiving:
    """What the receiver got, and its own CPU per second of listening."""

    arrivals: list[Arrival]
    cpu_percent: float


def receiver(conn: Connection, secret: str) -> None:
    conn.send(uvloop.run(_receiving(conn, secret)))


async def _receiving(conn: Connection, secret: str) -> Receiving:
    webhook = Webhook(secret)
    arrivals: list[Arrival] = []
    ids: set[str] = set()
    arrived = asyncio.Event()
    serving: set[asyncio.Task[object]] = set()
    writers: set[asyncio.StreamWriter] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        serving.add(task)
        writers.add(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                headers = _headers(head)
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                at, wall = time.monotonic(), time.time()
                arrival = _arrival(webhook, at, wall - at, headers, body)
                arrivals.append(arrival)
                if arrival.verified:
                    ids.add(arrival.webhook_id)
                arrived.set()
                status = "204 No Content" if arrival.verified else "400 Bad Request"
                writer.write(f"HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n".encode())
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    break
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass  # the sender closed its connection
        finally:
            writers.discard(writer)
            writer.close()

    server = await asyncio.start_server(serve, LOOPBACK, 0)
    conn.send(server.sockets[0].getsockname()[1])
    since = time.monotonic(), time.process_time()
    told = asyncio.Event()  # the load runs meanwhile; notifications are answered as they come
    loop = asyncio.get_running_loop()
    loop.add_reader(conn.fileno(), told.set)
    await told.wait()
    loop.remove_reader(conn.fileno())
    expected, deadline = conn.recv()
    while len(ids) < expected and time.monotonic() < deadline:
        arrived.clear()
        try:
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                await arrived.wait()
        except TimeoutError:
            break
    await asyncio.sleep(GRACE_SECONDS)
    server.close()
    for writer in list(writers):  # the service's idle keep-alive connections: each handler
        writer.close()  # then reads the end of its stream and returns
    await asyncio.gather(*serving, return_exceptions=True)
    wall, cpu = since
    cpu_percent = 100 * (time.process_time() - cpu) / max(time.monotonic() - wall, 1e-9)
    return Receiving(arrivals, cpu_percent)


def _headers(head: bytes) -> dict[str, str]:
    _, *lines = head[:-4].decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return headers


def _arrival(
    webhook: Webhook, at: float, ahead: float, headers: dict[str, str], body: bytes
) -> Arrival:
    webhook_id = headers.get("webhook-id", "")
    try:
        event = webhook.verify(body, headers)
    except (WebhookVerificationError, ValueError):
        return Arrival(at, webhook_id, verified=False)
    milestone = event["data"]["milestone"]

    def monotonic(iso: str) -> float:
        return dt.datetime.fromisoformat(iso).timestamp() - ahead

    return Arrival(
        at,
        webhook_id,
        verified=True,
        milestone_id=milestone["milestone_id"],
        indicator=milestone["indicator"],
        scope=milestone["scope"],
        threshold=str(milestone["threshold"]),
        recorded=monotonic(milestone["reached_at"]),
        signed=monotonic(event["timestamp"]),
    )
