"""What the cluster and replica scenarios stand on: nats-server nodes with the broker's users,
services run as processes on PostgreSQL databases of the test's own, a load of enterprises
registered, enrolled and trained over HTTP, and the readings a user would take afterwards —
the store, the stream read with plain nats-py, the indicators.

Every wait polls a condition with a generous deadline: the machine may be loaded.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import nats
import nats.errors
import nats.js.errors
import pytest
import sqlalchemy as sa
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from score_chassis.jetstream import ensure_stream, inbox_prefix
from score_cli import broker_config
from score_cli.broker import OPERATOR
from score_cli.nats_server import LOOPBACK, NatsServer, free_port
from score_contracts.events import EnterpriseEnrolled, EnterpriseRegistered, ParticipantsTrained
from score_contracts.subjects import STREAMS
from score_testing.databases import require_postgres
from score_testing.service import TEST_SECRET, bearer

ADMIN = bearer("admin")
REGISTERED = EnterpriseRegistered.event_type()
ENROLLED = EnterpriseEnrolled.event_type()
TRAINED = ParticipantsTrained.event_type()


async def eventually(
    probe: Callable[[], Any], *, within: float, what: str = "the condition"
) -> Any:
    """Poll `probe` (a function or a coroutine function) until it gives something truthy; fail
    after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        with contextlib.suppress(httpx.HTTPError, OSError):
            value = probe()
            if inspect.isawaitable(value):
                value = await value
            if value:
                return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not true within {within:g} s")
        await asyncio.sleep(0.2)


# The broker -------------------------------------------------------------------------------


@dataclass
class Broker:
    """nats-server nodes, one or a cluster routed on loopback, with the broker's users
    (`broker_config`, as `score up` writes them) in one `auth.conf` they all include."""

    data_dir: Path
    nodes: list[NatsServer]

    @property
    def url(self) -> str:
        """Every node, comma-separated: what a service of a cluster is given."""
        return ",".join(node.url for node in self.nodes)

    @property
    def passwords(self) -> dict[str, str]:
        return broker_config.passwords(self.data_dir)

    def node(self, name: str) -> NatsServer:
        return next(node for node in self.nodes if node.name == name)

    @contextlib.asynccontextmanager
    async def operator(self) -> AsyncIterator[nats.NATS]:
        """A plain nats-py client as the operator, which may read and manage every stream."""
        client = await nats.connect(
            [node.url for node in self.nodes],
            user=OPERATOR,
            password=self.passwords[OPERATOR],
            inbox_prefix=inbox_prefix(OPERATOR),
            connect_timeout=2,
            reconnect_time_wait=0.5,
            max_reconnect_attempts=-1,
        )
        try:
            yield client
        finally:
            await client.close()

    async def stream_info(self, stream: str) -> dict[str, Any]:
        """`$JS.API.STREAM.INFO.<stream>` as it answers: config, state and, on a cluster, which
        node leads the stream and how current its replicas are."""
        async with self.operator() as client:
            reply = await client.request(f"$JS.API.STREAM.INFO.{stream}", b"", timeout=5)
        info: dict[str, Any] = json.loads(reply.data)
        if "error" in info:
            raise RuntimeError(f"stream info of {stream}: {info['error']}")
        return info

    async def provision(self, *contexts: str, replicas: int) -> None:
        """Create the streams of `contexts`, as their producers would: a scenario that runs a
        consumer of a context but not its producer (visits) needs its stream there."""
        async with self.operator() as client:
            for context in contexts:
                await ensure_stream(client.jetstream(), STREAMS[context], replicas=replicas)

    async def ids_in(self, stream: str, *, within: float = 60.0) -> list[str]:
        """Every message's `Nats-Msg-Id` in the stream, in order, read headers only by an
        ephemeral consumer: what a downstream reader would receive. Read again from the start
        while the cluster cannot answer yet (a stream just made, or its leader just elected,
        answers 503 or not at all for a moment)."""
        deadline = time.monotonic() + within
        while True:
            try:
                return await self._ids_in(stream)
            except (nats.errors.TimeoutError, nats.js.errors.ServiceUnavailableError):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)

    async def _ids_in(self, stream: str) -> list[str]:
        async with self.operator() as client:
            js = client.jetstream()
            last = (await js.stream_info(stream)).state.last_seq
            if not last:
                return []
            config = ConsumerConfig(
                ack_policy=AckPolicy.NONE,
                deliver_policy=DeliverPolicy.ALL,
                headers_only=True,
                inactive_threshold=60.0,
                mem_storage=True,
            )
            reader = await js.pull_subscribe("", stream=stream, config=config)
            ids: list[str] = []
            seen = 0
            while seen < last:
                for message in await reader.fetch(500, timeout=10):
                    seen = message.metadata.sequence.stream
                    ids.append((message.headers or {})["Nats-Msg-Id"])
            await reader.unsubscribe()
            return ids


def _node_config(data_dir: Path, name: str, cluster_port: int, routes: list[int]) -> Path:
    """A node's config: its cluster block and the broker's users. Ports, store and name are
    `NatsServer`'s command line."""
    # Beside auth.conf: nats-server reads an include relative to the including file.
    config = broker_config.config_file(data_dir).parent / f"{name}.conf"
    route_lines = "\n".join(f"    nats-route://{LOOPBACK}:{port}" for port in routes)
    config.write_text(
        f"server_name: {name}\n"
        f"cluster {{\n  name: score\n  listen: {LOOPBACK}:{cluster_port}\n"
        f"  routes: [\n{route_lines}\n  ]\n}}\n"
        f'include "{broker_config.AUTH_FILE}"\n'
    )
    return config


def start_broker(root: Path, *, nodes: int) -> Broker:
    """One node, or a cluster of `nodes` routed to each other, each with its own store."""
    data_dir = root / "broker"
    broker_config.write_config(data_dir)
    if nodes == 1:
        servers = [
            NatsServer(root / "n1", name="n1", config_file=broker_config.config_file(data_dir))
        ]
    else:
        cluster_ports = [free_port() for _ in range(nodes)]
        servers = [
            NatsServer(
                root / name,
                name=name,
                config_file=_node_config(data_dir, name, port, cluster_ports),
                start_timeout=60,
            )
            for name, port in ((f"n{i + 1}", p) for i, p in enumerate(cluster_ports))
        ]
    broker = Broker(data_dir, servers)
    try:
        for server in servers:
            server.start()
    except BaseException:
        stop_broker(broker)
        raise
    return broker


def stop_broker(broker: Broker) -> None:
    for node in broker.nodes:
        node.stop()


def kill(node: NatsServer) -> None:
    """SIGKILL: no clean shutdown of JetStream, no goodbye to its routes or clients."""
    assert node.pid is not None
    os.kill(node.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while node.running and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not node.running


async def wait_for_stream_quorum(broker: Broker, stream: str, replicas: int) -> dict[str, Any]:
    """Until the stream has a leader and every replica is current: the cluster whole again."""

    async def whole() -> dict[str, Any] | None:
        try:
            info = await broker.stream_info(stream)
        except (nats.errors.Error, RuntimeError):
            return None
        cluster = info.get("cluster", {})
        peers = cluster.get("replicas", [])
        current = [p for p in peers if p.get("current") and not p.get("offline")]
        if cluster.get("leader") and len(current) == replicas - 1:
            return info
        return None

    return await eventually(whole, within=90, what=f"{stream} led with every replica current")


# Databases --------------------------------------------------------------------------------


@pytest.fixture
async def new_postgres_database(
    postgres_server_url: str | None,
) -> AsyncIterator[Callable[[], Awaitable[str]]]:
    """Makes empty PostgreSQL databases of the test's own (dropped afterwards): their URLs."""
    server = require_postgres(postgres_server_url)
    made: list[str] = []

    async def new() -> str:
        name = f"score_cluster_{uuid.uuid4().hex[:10]}"
        admin = create_async_engine(server, isolation_level="AUTOCOMMIT")
        async with admin.connect() as conn:
            await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        await admin.dispose()
        made.append(name)
        return make_url(server).set(database=name).render_as_string(hide_password=False)

    yield new
    admin = create_async_engine(server, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        for name in made:
            await conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await admin.dispose()


async def store_events(database_url: str) -> list[tuple[str, str, str]]:
    """The store's events, in position order: (event id, type, stream id)."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                sa.text("SELECT event_id, type, stream_id FROM events ORDER BY position")
            )
            return [(str(r[0]), str(r[1]), str(r[2])) for r in rows]
    finally:
        await engine.dispose()


# Services ---------------------------------------------------------------------------------


@dataclass
class Service:
    """A service as a process of its own (`python -m score_<name>`), logging JSON to a file;
    it can be killed and started again on the same port and database."""

    name: str
    database_url: str
    broker: Broker
    workdir: Path
    replicas: int
    label: str = ""
    """Its name among replicas of the same service (`enrolment-a`), for its log."""
    environment: dict[str, str] = field(default_factory=dict)
    """Settings of the test's own (`SCORE_*`)."""
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.workdir / f"{self.label or self.name}.log"

    def log_events(self, event: str) -> list[dict[str, Any]]:
        """The JSON lines of the log whose `event` is `event`."""
        found = []
        for line in self.log_file.read_text("utf-8", errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict) and record.get("event") == event:
                    found.append(record)
        return found

    def start(self) -> None:
        env = {
            **os.environ,
            "SCORE_DATABASE_URL": self.database_url,
            "SCORE_NATS_URL": self.broker.url,
            "SCORE_NATS_USER": self.name,
            "SCORE_NATS_PASSWORD": self.broker.passwords[self.name],
            "SCORE_STREAM_REPLICAS": str(self.replicas),
            "SCORE_AUTH_SECRET": TEST_SECRET,
            "SCORE_HTTP_HOST": LOOPBACK,
            "SCORE_HTTP_PORT": str(self.port),
            "SCORE_LOG_FORMAT": "json",
            "SCORE_LOG_LEVEL": "info",
            "PYTHONUNBUFFERED": "1",
            **self.environment,
        }
        self.workdir.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", f"score_{self.name}"],
                env=env,
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    async def ready(self, within: float = 90) -> None:
        """Until `/readyz` answers 200 with NATS connected."""
        async with httpx.AsyncClient(base_url=self.url, trust_env=False, timeout=5) as client:

            async def answers() -> bool:
                if self.process is not None and self.process.poll() is not None:
                    tail = self.log_file.read_text(errors="replace")[-3000:]
                    pytest.fail(f"{self.label or self.name} exited: {tail}")
                response = await client.get("/readyz")
                return response.status_code == 200 and response.json()["checks"]["nats"] == "ok"

            await eventually(answers, within=within, what=f"{self.label or self.name} ready")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=15)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    async def metric(self, name: str, **labels: str) -> float:
        """A sample of the service's `/metrics` (0 when the series is absent)."""
        async with httpx.AsyncClient(trust_env=False, timeout=5) as client:
            text = (await client.get(f"{self.url}/metrics")).text
        wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
        series = f"{name}{{{wanted}}}" if labels else name
        total = 0.0
        for line in text.splitlines():
            if line.startswith(series + " "):
                total += float(line.rsplit(" ", 1)[1])
        return total


@pytest.fixture
def services() -> Iterator[list[Service]]:
    """The services a test starts (appended to this list): all stopped at teardown."""
    started: list[Service] = []
    yield started
    for service in reversed(started):
        service.stop()


# The load ---------------------------------------------------------------------------------


@dataclass
class Load:
    """What the services acknowledged (2xx) of a load, and what failed without an answer."""

    registered: list[str] = field(default_factory=list)
    enrolled: list[str] = field(default_factory=list)
    trained: list[str] = field(default_factory=list)
    participants: int = 0
    unanswered: Counter[str] = field(default_factory=Counter)
    """Requests that had no answer (connection lost, timeout): their outcome is unknown."""
    refused: Counter[str] = field(default_factory=Counter)

    @property
    def acknowledged(self) -> int:
        return len(self.registered) + len(self.enrolled) + len(self.trained)


TRAINEES = {"managers": {"women": 1, "men": 1}, "workers": {"women": 2, "men": 1}}
PER_TRAINING = 5


async def enterprise_through_training(
    client: httpx.AsyncClient, base_url: str, number: int, load: Load
) -> None:
    """Register an enterprise, enrol it in module 1 and record its training, each acknowledged
    answer counted; a step not acknowledged ends the enterprise's course there."""

    async def command(kind: str, path: str, body: dict[str, Any]) -> dict[str, Any] | None:
        try:
            response = await client.post(f"{base_url}{path}", json=body)
        except httpx.HTTPError:
            load.unanswered[kind] += 1
            return None
        if response.status_code // 100 != 2:
            load.refused[f"{kind} {response.status_code}"] += 1
            return None
        answer: dict[str, Any] = response.json()
        return answer

    registered = await command(
        "register",
        "/v1/enterprises",
        {
            "name": f"Empresa {number}",
            "tax_id": f"10{number:08d}",
            "region": ("santa_cruz", "oruro", "la_paz", "cochabamba")[number % 4],
            "sector": "textiles",
            "chamber": "CAINCO",
            "workforce": {"women": 30, "men": 25},
        },
    )
    if registered is None:
        return
    enterprise = registered["id"]
    load.registered.append(enterprise)
    enrolled = await command(
        "enrol",
        f"/v1/enterprises/{enterprise}/enrolments",
        {"module": 1, "delivery": "direct", "delivery_cost": {"amount": "4200"}},
    )
    if enrolled is None:
        return
    load.enrolled.append(enterprise)
    trained = await command(
        "train",
        f"/v1/enterprises/{enterprise}/trainings",
        {"enrolment_id": enrolled["enrolment_id"], **TRAINEES},
    )
    if trained is None:
        return
    load.trained.append(enterprise)
    load.participants += PER_TRAINING


async def drive(base_urls: list[str], numbers: range, load: Load, *, concurrency: int = 6) -> None:
    """`numbers` enterprises through their training, `concurrency` at a time, spread over the
    replicas at `base_urls` in turn. The list may change while the load runs (a replica killed
    is taken out of it): each enterprise goes, all three steps, to a replica listed as it
    begins."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for number in numbers:
        queue.put_nowait(number)
    async with httpx.AsyncClient(headers=ADMIN, trust_env=False, timeout=30) as client:

        async def worker() -> None:
            while not queue.empty():
                number = queue.get_nowait()
                url = base_urls[number % len(base_urls)]
                await enterprise_through_training(client, url, number, load)

        await asyncio.gather(*(worker() for _ in range(concurrency)))


async def indicators_of(url: str) -> dict[str, Any] | None:
    """The national indicators, or None while the projection is rebuilt (503)."""
    async with httpx.AsyncClient(headers=ADMIN, trust_env=False, timeout=10) as client:
        response = await client.get(f"{url}/v1/indicators")
    if response.status_code != 200:
        return None
    figures: dict[str, Any] = response.json()["indicators"]
    return figures
