"""B7: how soon a command answered 201 shows in `GET /v1/indicators`, under a steady load.

Commands go out at a fixed rate whatever the answers (an open loop, so a slow system is not
given a rest; one due while too many are unanswered is skipped): registrations and trainings
in turn, each training on an enterprise of its own enrolled beforehand, so that every one
answered 201 adds 1 to `enterprises_trained`. Meanwhile pollers read
`GET /v1/indicators` back to back. A registration adds 1 to `enterprises_registered`, a
training `PARTICIPANTS` to `participants_trained`; the k-th command of a kind to be answered
201 counts as visible at the first poll answered with the count of k of them. That is exact
when the projection takes the commands in the order they were answered, and close otherwise.
A poll is taken at the moment its answer arrived, so the figure includes the reading, as a
person refreshing the dashboard would see it; taken at the moment it was asked instead, it
gives the least the latency can have been (`earliest_*` in the JSON).

The sender and each poller are processes of their own with a lean HTTP/1.1 client, so the
figures are the system's and not the harness's: sharing one event loop, they held up each
other's timestamps (a poll asked before a 201 was recorded already showed its command). Each
says its own CPU in the JSON.

Given the notifications service, one national webhook is subscribed before the load, and a
receiver (`bench/webhooks.py`, a process of its own too) times each notification's arrival.
`enterprises_trained` crosses each threshold T of the programme's "every 10 enterprises
trained" with the (T - trained before)-th training answered 201, by the same reading as
above: the milestone's latency runs from that 201 to its webhook's arrival. Every national
milestone announced during the load must arrive once, signed, and none twice.
"""

from __future__ import annotations

import asyncio
import base64
import bisect
import json
import multiprocessing
import os
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from multiprocessing.connection import Connection
from typing import Any

import httpx
import uvloop

from bench import webhooks
from bench.measure import percentile

PARTICIPANTS = 5
"""People in each training of the load (2 managers, 3 workers)."""
POLLERS = 2
IN_FLIGHT = 256
"""Commands awaiting their answer at once; a command due while that many are out is not sent
(and counted as skipped), so the load keeps its time and says what rate it reached."""


def registration(label: str, n: int) -> dict[str, Any]:
    return {
        "name": f"Bench {n}",
        "tax_id": f"{label}-{n}",
        "region": "la_paz",
        "sector": "manufacturing",
        "chamber": "CNI",
        "workforce": {"women": 50, "men": 50},
    }


def training(enrolment_id: str) -> dict[str, Any]:
    return {
        "enrolment_id": enrolment_id,
        "managers": {"women": 1, "men": 1},
        "workers": {"women": 2, "men": 1},
    }


async def enrolled_enterprises(
    client: httpx.AsyncClient, enrolment_url: str, count: int, *, concurrency: int = 8
) -> list[tuple[str, str]]:
    """Register `count` enterprises and enrol each in Module 1: their (enterprise, enrolment)
    ids."""
    label = uuid.uuid4().hex[:8]
    gate = asyncio.Semaphore(concurrency)

    async def one(n: int) -> tuple[str, str]:
        async with gate:
            registered = await client.post(
                f"{enrolment_url}/v1/enterprises", json=registration(label, n)
            )
            registered.raise_for_status()
            enterprise_id = registered.json()["id"]
            enrolled = await client.post(
                f"{enrolment_url}/v1/enterprises/{enterprise_id}/enrolments",
                json={"module": 1, "delivery": "direct", "delivery_cost": {"amount": "4500"}},
            )
            enrolled.raise_for_status()
            return enterprise_id, enrolled.json()["enrolment_id"]

    return list(await asyncio.gather(*(one(n) for n in range(count))))


async def indicator_counts(client: httpx.AsyncClient, indicators_url: str) -> tuple[int, int]:
    """(`enterprises_registered`, `participants_trained`) now; raises while rebuilding."""
    response = await client.get(f"{indicators_url}/v1/indicators")
    response.raise_for_status()
    indicators = response.json()["indicators"]
    return indicators["enterprises_registered"], indicators["participants_trained"]


async def trained(client: httpx.AsyncClient, indicators_url: str) -> int:
    """`enterprises_trained` now."""
    response = await client.get(f"{indicators_url}/v1/indicators")
    response.raise_for_status()
    return int(response.json()["indicators"]["enterprises_trained"])


async def settled_counts(
    client: httpx.AsyncClient, indicators_url: str, *, registered: int, within: float = 60.0
) -> tuple[int, int]:
    """The counts once the projection shows at least `registered` enterprises."""
    deadline = time.monotonic() + within
    while True:
        try:
            counts = await indicator_counts(client, indicators_url)
            if counts[0] >= registered:
                return counts
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"the indicators did not show {registered} enterprises")
        await asyncio.sleep(0.05)


@dataclass(frozen=True, slots=True)
class Poll:
    """One `GET /v1/indicators`: when it was asked and answered, and the two counts."""

    asked: float
    answered: float
    registered: int
    participants: int

    def count(self, kind: str) -> int:
        return self.registered if kind == "registration" else self.participants


@dataclass
class Freshness:
    rate: float
    """Commands per second asked for."""
    seconds: float
    sent: int = 0
    skipped: int = 0
    """Commands due while `IN_FLIGHT` were unanswered: not sent."""
    answered_201: int = 0
    failed: int = 0
    sending_seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    """201 → visible, one per command answered 201 and seen."""
    earliest_ms: list[float] = field(default_factory=list)
    """The same, taking each poll at the moment it was asked rather than answered: the
    least the latencies can have been."""
    unseen: int = 0
    """Commands answered 201 that never showed before the harness stopped waiting."""
    poll_ms: list[float] = field(default_factory=list)
    """How long each `GET /v1/indicators` took."""
    sender_cpu_percent: float = 0.0
    poller_cpu_percent: list[float] = field(default_factory=list)
    """The harness's own processes' CPU (100 = a core) while they worked: small, or the
    figures say as much about the harness as about the system."""
    webhooks: Webhooks | None = None
    """201 → webhook received, when the notifications service runs."""

    @property
    def reached_rate(self) -> float:
        return self.sent / self.sending_seconds if self.sending_seconds else 0.0

    @property
    def p50_ms(self) -> float | None:
        return percentile(self.latencies_ms, 0.50) if self.latencies_ms else None

    @property
    def p99_ms(self) -> float | None:
        return percentile(self.latencies_ms, 0.99) if self.latencies_ms else None

    def as_json(self) -> dict[str, object]:
        return {
            "commands_per_second_asked": self.rate,
            "commands_per_second_sent": round(self.reached_rate, 1),
            "seconds": self.seconds,
            "sent": self.sent,
            "skipped": self.skipped,
            "answered_201": self.answered_201,
            "failed": self.failed,
            "unseen": self.unseen,
            "polls": len(self.poll_ms),
            "poll_ms_p50": round(percentile(self.poll_ms, 0.5), 1) if self.poll_ms else None,
            "sender_cpu_percent": round(self.sender_cpu_percent, 1),
            "poller_cpu_percent": [round(cpu, 1) for cpu in self.poller_cpu_percent],
            "earliest_p50_ms": (
                round(percentile(self.earliest_ms, 0.5), 1) if self.earliest_ms else None
            ),
            "earliest_p99_ms": (
                round(percentile(self.earliest_ms, 0.99), 1) if self.earliest_ms else None
            ),
            "p50_ms": None if self.p50_ms is None else round(self.p50_ms, 1),
            "p90_ms": round(percentile(self.latencies_ms, 0.9), 1) if self.latencies_ms else None,
            "p99_ms": None if self.p99_ms is None else round(self.p99_ms, 1),
            "max_ms": round(max(self.latencies_ms), 1) if self.latencies_ms else None,
            **({} if self.webhooks is None else {"webhooks": self.webhooks.as_json()}),
        }


@dataclass
class Webhooks:
    """The national milestones announced during the load, and their webhooks' arrivals."""

    announced: int = 0
    """National milestones recorded by the indicators service during the load."""
    received: int = 0
    """Of those, how many arrived signed (verified with the subscription's secret)."""
    lost: int = 0
    """Announced and never arrived signed."""
    twice: int = 0
    """Arrivals after a milestone's first (by `webhook-id` or by milestone)."""
    unverified: int = 0
    """Arrivals whose signature failed."""
    unexpected: int = 0
    """Signed arrivals for a milestone not announced during the load."""
    uncaused: int = 0
    """Milestones received whose causing 201 cannot be told (not of `enterprises_trained`,
    or a threshold beyond the trainings answered): no latency for them."""
    latencies_ms: list[float] = field(default_factory=list)
    """201 of the command that made the figure cross → arrival, one per milestone."""
    stages_ms: dict[str, list[float]] = field(
        default_factory=lambda: {
            "answered_to_recorded": [],
            "recorded_to_signed": [],
            "signed_to_arrived": [],
        }
    )
    """The same in three parts: 201 → the milestone recorded by the indicators' watch, →
    the call signed by the notifications' sender, → its arrival. From the system's clock,
    which may step: a guide to where the time goes, not a figure held to a target."""
    receiver_cpu_percent: float = 0.0

    @property
    def wrong(self) -> int:
        """Not exactly once and signed: lost, twice, unsigned or unexpected."""
        return self.lost + self.twice + self.unverified + self.unexpected

    def percentile_ms(self, share: float) -> float | None:
        return percentile(self.latencies_ms, share) if self.latencies_ms else None

    def as_json(self) -> dict[str, object]:
        def rounded(value: float | None) -> float | None:
            return None if value is None else round(value, 1)

        return {
            "announced": self.announced,
            "received": self.received,
            "lost": self.lost,
            "twice": self.twice,
            "unverified": self.unverified,
            "unexpected": self.unexpected,
            "uncaused": self.uncaused,
            "timed": len(self.latencies_ms),
            "p50_ms": rounded(self.percentile_ms(0.5)),
            "p90_ms": rounded(self.percentile_ms(0.9)),
            "p99_ms": rounded(self.percentile_ms(0.99)),
            "max_ms": rounded(max(self.latencies_ms) if self.latencies_ms else None),
            **{
                f"{stage}_{name}_ms": rounded(percentile(values, share) if values else None)
                for stage, values in self.stages_ms.items()
                for name, share in (("p50", 0.5), ("p99", 0.99))
            },
            "receiver_cpu_percent": round(self.receiver_cpu_percent, 1),
        }


def _visible_at(
    answered: list[float], polls: list[tuple[float, int]], base: int, step: int
) -> tuple[list[float], int]:
    """Latencies (ms) of the commands answered at `answered` (sorted) whose effect shows in
    `polls` (time, count), and how many never showed."""
    times, highest = [], base
    counts: list[int] = []
    for at, count in sorted(polls):
        highest = max(highest, count)  # two pollers' answers can cross
        times.append(at)
        counts.append(highest)
    latencies: list[float] = []
    unseen = 0
    for k, answered_at in enumerate(answered, start=1):
        first = bisect.bisect_left(counts, base + k * step)
        if first == len(counts):
            unseen += 1
            continue
        latencies.append(max(0.0, times[first] - answered_at) * 1000)
    return latencies, unseen


@dataclass(frozen=True, slots=True)
class Answer:
    """A command answered 201: its kind, its place in the load, and when the answer arrived."""

    kind: str
    n: int
    at: float


@dataclass(frozen=True, slots=True)
class Sending:
    """What the sender did: the commands answered 201, and the counts of the rest."""

    answers: list[Answer]
    sent: int
    skipped: int
    failed: int
    seconds: float
    cpu_percent: float
    """The sender's own CPU from the first command to the last answer, per second of that."""


@dataclass(frozen=True, slots=True)
class Polling:
    """What a poller saw, and its own CPU per second of polling."""

    polls: list[Poll]
    cpu_percent: float


def _cpu_percent(since: tuple[float, float]) -> float:
    """This process's CPU per second of wall time since `(monotonic, process_time)`."""
    wall, cpu = since
    return 100 * (time.process_time() - cpu) / max(time.monotonic() - wall, 1e-9)


# The sender and the pollers each run in a process of their own, so that neither's event loop
# holds up the other's: a 201 is timed when it arrives and a poll when it is answered, not when
# a shared loop gets round to it. They time on `time.monotonic()`, CLOCK_MONOTONIC, which is one
# clock for every process of the machine, so the parent can set their times side by side.
#
# The parent and a child speak over a pipe: the child says "ready" once it is set up; the
# parent answers with the instant to start at. The sender then sends its `Sending`; a poller,
# told what counts to wait for and until when, sends its polls.


class HttpFailed(Exception):
    """A request that got no whole HTTP answer."""


class Http:
    """Real HTTP/1.1 requests to one service over keep-alive connections, at most
    `connections` at once, with no more work than that: the clients share two cores with the
    system they measure, and a client's work delays its own timestamps."""

    def __init__(
        self, base_url: str, token: str, *, connections: int, timeout: float = 30.0
    ) -> None:
        url = urllib.parse.urlsplit(base_url)
        if url.hostname is None or url.port is None:
            raise ValueError(f"{base_url} has no host and port")
        self._host, self._port = url.hostname, url.port
        self._headers = f"Host: {url.netloc}\r\nAuthorization: Bearer {token}\r\n"
        self._timeout = timeout
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self._slots = asyncio.Semaphore(connections)
        self._open: set[asyncio.StreamWriter] = set()

    async def get(self, path: str) -> tuple[int, bytes]:
        return await self._request(f"GET {path} HTTP/1.1\r\n{self._headers}\r\n".encode())

    async def post(self, path: str, body: object) -> tuple[int, bytes]:
        content = json.dumps(body).encode()
        head = (
            f"POST {path} HTTP/1.1\r\n{self._headers}Content-Type: application/json\r\n"
            f"Content-Length: {len(content)}\r\n\r\n"
        )
        return await self._request(head.encode() + content)

    async def _request(self, request: bytes) -> tuple[int, bytes]:
        async with self._slots:
            try:
                async with asyncio.timeout(self._timeout):
                    while self._idle:  # the server may have closed one left idle
                        reader, writer = self._idle.pop()
                        if not reader.at_eof() and not writer.is_closing():
                            break
                        self._open.discard(writer)
                        writer.close()
                    else:
                        reader, writer = await asyncio.open_connection(self._host, self._port)
                        self._open.add(writer)
                    try:
                        writer.write(request)
                        status, content, keep = await _answer(reader)
                    except BaseException:
                        self._open.discard(writer)
                        writer.close()
                        raise
            except (OSError, EOFError, TimeoutError, ValueError, asyncio.LimitOverrunError) as e:
                raise HttpFailed(str(e) or type(e).__name__) from e
            if keep:
                self._idle.append((reader, writer))
            else:
                self._open.discard(writer)
                writer.close()
            return status, content

    def close(self) -> None:
        for writer in self._open:
            writer.close()
        self._open.clear()
        self._idle.clear()


async def _answer(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """The status, the body and whether the connection stays open, of one HTTP/1.1 answer."""
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *lines = head[:-4].split(b"\r\n")
    status = int(status_line.split(b" ", 2)[1])
    headers = {}
    for line in lines:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip().lower()
    keep = headers.get(b"connection") != b"close"
    if headers.get(b"transfer-encoding") == b"chunked":
        chunks = []
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            chunks.append((await reader.readexactly(size + 2))[:-2])
        while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
            pass
        return status, b"".join(chunks), keep
    return status, await reader.readexactly(int(headers.get(b"content-length", b"0"))), keep


def _sender(
    conn: Connection,
    enrolment_url: str,
    token: str,
    rate: float,
    seconds: float,
    targets: list[tuple[str, str]],
) -> None:
    conn.send(uvloop.run(_sending(conn, enrolment_url, token, rate, seconds, targets)))


async def _sending(
    conn: Connection,
    enrolment_url: str,
    token: str,
    rate: float,
    seconds: float,
    targets: list[tuple[str, str]],
) -> Sending:
    client = Http(enrolment_url, token, connections=64)
    label = uuid.uuid4().hex[:8]
    gate = asyncio.Semaphore(IN_FLIGHT)
    answers: list[Answer] = []
    failed = 0

    async def command(n: int) -> None:
        nonlocal failed
        try:
            if n % 2 == 0:
                kind = "registration"
                status, _ = await client.post("/v1/enterprises", registration(label, n))
            else:
                kind = "training"
                enterprise_id, enrolment_id = targets[(n // 2) % len(targets)]
                status, _ = await client.post(
                    f"/v1/enterprises/{enterprise_id}/trainings", training(enrolment_id)
                )
            if status == 201:
                answers.append(Answer(kind, n, time.monotonic()))
            else:
                failed += 1
        except HttpFailed:
            failed += 1
        finally:
            gate.release()

    conn.send("ready")
    started: float = conn.recv()
    await asyncio.sleep(max(0.0, started - time.monotonic()))
    since = time.monotonic(), time.process_time()
    commands: list[asyncio.Task[None]] = []
    skipped = 0
    try:
        for n in range(round(rate * seconds)):
            delay = started + n / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if gate.locked():
                skipped += 1
                continue
            await gate.acquire()
            commands.append(asyncio.create_task(command(n)))
        sending_seconds = time.monotonic() - started
        await asyncio.gather(*commands)
    finally:
        client.close()
    return Sending(answers, len(commands), skipped, failed, sending_seconds, _cpu_percent(since))


def _poller(conn: Connection, indicators_url: str, token: str) -> None:
    conn.send(uvloop.run(_polling(conn, indicators_url, token)))


async def _polling(conn: Connection, indicators_url: str, token: str) -> Polling:
    reader = Http(indicators_url, token, connections=1)
    polls: list[Poll] = []
    conn.send("ready")
    started: float = conn.recv()
    await asyncio.sleep(max(0.0, started - time.monotonic()))
    since = time.monotonic(), time.process_time()
    want: tuple[int, int] | None = None
    deadline = float("inf")
    seen = (0, 0)
    try:
        while time.monotonic() < deadline:
            if want is None and conn.poll():
                want, deadline = conn.recv()
            if want is not None and seen[0] >= want[0] and seen[1] >= want[1]:
                break
            asked = time.monotonic()
            try:
                status, body = await reader.get("/v1/indicators")
            except HttpFailed:
                status, body = 0, b""
            if status != 200:  # 503 while rebuilding
                await asyncio.sleep(0.01)
                continue
            answered = time.monotonic()
            indicators = json.loads(body)["indicators"]
            registered, participants = (
                indicators["enterprises_registered"],
                indicators["participants_trained"],
            )
            polls.append(Poll(asked, answered, registered, participants))
            seen = (max(seen[0], registered), max(seen[1], participants))
    finally:
        reader.close()
    return Polling(polls, _cpu_percent(since))


async def measure(
    enrolment_url: str,
    indicators_url: str,
    token: str,
    *,
    rate: float,
    seconds: float,
    notifications_url: str | None = None,
    settle_seconds: float = 30.0,
) -> Freshness:
    """The load, and what it measures. Each training of the load has an enterprise of its own,
    registered and enrolled beforehand; with `notifications_url`, a national webhook is
    subscribed and its notifications timed too."""
    enterprises = max(1, round(rate * seconds) // 2)  # the odd-numbered commands: trainings
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(headers=headers, timeout=30.0, trust_env=False) as client:
        targets = await enrolled_enterprises(client, enrolment_url, enterprises)
        registered_before, participants_before = await settled_counts(
            client, indicators_url, registered=enterprises
        )
        trained_before = await trained(client, indicators_url)
        milestones_before = {
            m["milestone_id"] for m in await national_milestones(client, indicators_url)
        }
    return await asyncio.to_thread(
        _measured,
        enrolment_url,
        indicators_url,
        token,
        rate=rate,
        seconds=seconds,
        targets=targets,
        before=(registered_before, participants_before),
        settle_seconds=settle_seconds,
        notified=(
            None
            if notifications_url is None
            else _Notified(notifications_url, trained_before, milestones_before)
        ),
    )


async def national_milestones(
    client: httpx.AsyncClient, indicators_url: str
) -> list[dict[str, Any]]:
    """The national milestones recorded so far, as `GET /v1/milestones` answers them."""
    response = await client.get(f"{indicators_url}/v1/milestones", params={"limit": 1000})
    response.raise_for_status()
    return [m for m in response.json()["milestones"] if m["scope"] == "national"]


@dataclass(frozen=True, slots=True)
class _Notified:
    """The notifications service to subscribe to, and what was there before the load."""

    url: str
    trained_before: int
    milestones_before: set[str]


SETTLED_SECONDS = 2.0
"""The milestones count as all announced once their list has not changed for this long after
the projection shows every command: the watch looks every 0.5 s while the projection moves."""


def subscribe(notifications_url: str, token: str, receiver_url: str, secret: str) -> None:
    """Subscribe a national webhook to `receiver_url`, signed with `secret`."""
    body = {
        "chamber": "Bench",
        "national": True,
        "channel": {"kind": "webhook", "url": receiver_url, "secret": secret},
    }
    with httpx.Client(
        headers={"Authorization": f"Bearer {token}"}, timeout=30.0, trust_env=False
    ) as client:
        client.post(f"{notifications_url}/v1/subscriptions", json=body).raise_for_status()


def _measured(
    enrolment_url: str,
    indicators_url: str,
    token: str,
    *,
    rate: float,
    seconds: float,
    targets: list[tuple[str, str]],
    before: tuple[int, int],
    settle_seconds: float,
    notified: _Notified | None,
) -> Freshness:
    """The load itself, from a sender process, `POLLERS` poller processes and, with
    `notified`, a webhook receiver process."""
    context = multiprocessing.get_context("spawn")
    sender, sender_end = context.Pipe()
    pollers = [context.Pipe() for _ in range(POLLERS)]
    secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    receiving, receiving_end = context.Pipe()
    processes = [
        context.Process(
            target=_sender,
            args=(sender_end, enrolment_url, token, rate, seconds, targets),
            name="b7-sender",
        ),
        *(
            context.Process(target=_poller, args=(end, indicators_url, token), name="b7-poller")
            for _, end in pollers
        ),
    ]
    if notified is not None:
        processes.append(
            context.Process(
                target=webhooks.receiver, args=(receiving_end, secret), name="b7-receiver"
            )
        )
    for process in processes:
        process.start()
    sender_end.close()  # the children's ends: a child that dies ends the parent's reading
    receiving_end.close()
    for _, end in pollers:
        end.close()
    try:
        if notified is not None:
            port: int = receiving.recv()
            subscribe(notified.url, token, f"http://127.0.0.1:{port}/hooks/score", secret)
        ends = [sender, *(ours for ours, _ in pollers)]
        for end in ends:
            if end.recv() != "ready":
                raise RuntimeError("a B7 process did not start")
        started = time.monotonic() + 0.1
        for end in ends:
            end.send(started)
        sending: Sending = sender.recv()
        registrations = sum(1 for a in sending.answers if a.kind == "registration")
        want = (
            before[0] + registrations,
            before[1] + PARTICIPANTS * (len(sending.answers) - registrations),
        )
        deadline = time.monotonic() + settle_seconds
        for ours, _ in pollers:
            ours.send((want, deadline))
        pollings: list[Polling] = [ours.recv() for ours, _ in pollers]
        announced: list[dict[str, Any]] = []
        received: webhooks.Receiving | None = None
        if notified is not None:
            announced = _announced(indicators_url, token, notified, deadline)
            receiving.send((len(announced), time.monotonic() + settle_seconds))
            received = receiving.recv()
    except BaseException:
        for process in processes:
            process.kill()
        raise
    finally:
        for process in processes:
            process.join(timeout=5)

    polls = [poll for polling in pollings for poll in polling.polls]

    result = Freshness(rate=rate, seconds=seconds)
    result.sent, result.skipped, result.failed = sending.sent, sending.skipped, sending.failed
    result.sending_seconds = sending.seconds
    result.answered_201 = len(sending.answers)
    result.sender_cpu_percent = sending.cpu_percent
    result.poller_cpu_percent = [polling.cpu_percent for polling in pollings]
    result.poll_ms = [(p.answered - p.asked) * 1000 for p in polls]
    for kind, base, step in (
        ("registration", before[0], 1),
        ("training", before[1], PARTICIPANTS),
    ):
        times = sorted(a.at for a in sending.answers if a.kind == kind)
        latencies, unseen = _visible_at(
            times, [(p.answered, p.count(kind)) for p in polls], base, step
        )
        result.latencies_ms += latencies
        result.unseen += unseen
        earliest, _ = _visible_at(times, [(p.asked, p.count(kind)) for p in polls], base, step)
        result.earliest_ms += earliest
    if notified is not None and received is not None:
        trainings = sorted(a.at for a in sending.answers if a.kind == "training")
        result.webhooks = _webhooks(
            announced, received, trainings, trained_before=notified.trained_before
        )
    return result


def _announced(
    indicators_url: str, token: str, notified: _Notified, deadline: float
) -> list[dict[str, Any]]:
    """The national milestones recorded since the load began, once their list has settled."""

    async def settled() -> list[dict[str, Any]]:
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(headers=headers, timeout=30.0, trust_env=False) as client:
            last: set[str] = set()
            since = time.monotonic()
            while True:
                listed = [
                    m
                    for m in await national_milestones(client, indicators_url)
                    if m["milestone_id"] not in notified.milestones_before
                ]
                ids = {m["milestone_id"] for m in listed}
                now = time.monotonic()
                if ids != last:
                    last, since = ids, now
                elif now - since >= SETTLED_SECONDS or now > deadline:
                    return listed
                await asyncio.sleep(0.2)

    return asyncio.run(settled())


def _webhooks(
    announced: list[dict[str, Any]],
    received: webhooks.Receiving,
    trainings: list[float],
    *,
    trained_before: int,
) -> Webhooks:
    """Each announced milestone's first signed arrival, set against the 201 that caused it:
    the training that made `enterprises_trained` reach the threshold."""
    result = Webhooks(announced=len(announced), receiver_cpu_percent=received.cpu_percent)
    wanted = {m["milestone_id"] for m in announced}
    first: dict[str, webhooks.Arrival] = {}
    ids: set[str] = set()
    for arrival in sorted(received.arrivals, key=lambda a: a.at):
        if not arrival.verified or arrival.milestone_id is None:
            result.unverified += 1
        elif arrival.milestone_id in first or arrival.webhook_id in ids:
            result.twice += 1
        elif arrival.milestone_id not in wanted:
            result.unexpected += 1
        else:
            first[arrival.milestone_id] = arrival
            ids.add(arrival.webhook_id)
    result.received = len(first)
    result.lost = len(wanted - first.keys())
    for arrival in first.values():
        k = int(Decimal(arrival.threshold or "0")) - trained_before
        if arrival.indicator != "enterprises_trained" or not 1 <= k <= len(trainings):
            result.uncaused += 1
            continue
        caused = trainings[k - 1]
        result.latencies_ms.append(max(0.0, arrival.at - caused) * 1000)
        if arrival.recorded is not None and arrival.signed is not None:
            stages = result.stages_ms
            stages["answered_to_recorded"].append((arrival.recorded - caused) * 1000)
            stages["recorded_to_signed"].append((arrival.signed - arrival.recorded) * 1000)
            stages["signed_to_arrived"].append((arrival.at - arrival.signed) * 1000)
    return result
