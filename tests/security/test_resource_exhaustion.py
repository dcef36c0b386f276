"""What a hostile client can send a service, and what it gets: each refused within the limits
docs/RELIABILITY.md states ("Attacks and limits"), the service's memory bounded, and every
other client answered meanwhile.

The enrolment service runs as it is deployed (its own process, uvicorn, SQLite, nats-server);
the slow clients speak raw HTTP/1.1 over a socket, a byte at a time. The request deadline is
set to 2 seconds here (30 by default) so that the test is short.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import httpx
import pytest

from score_chassis.settings import DEFAULT_MAX_BODY_BYTES
from score_testing.process import ServiceProcess, service_process
from score_testing.service import bearer

pytestmark = [pytest.mark.nats, pytest.mark.e2e, pytest.mark.timeout(180)]

DEADLINE: Final = 2.0
"""SCORE_HTTP_REQUEST_SECONDS of the service under attack."""
CUT_WITHIN: Final = DEADLINE + 8.0
"""A slow client is cut off by then: the deadline, and a loaded machine's delay."""
STAFF: Final = bearer("staff")
ENTERPRISE: Final[dict[str, Any]] = {
    "name": "Metalúrgica Andina",
    "tax_id": "5566778899",
    "region": "oruro",
    "sector": "metalwork",
    "chamber": "Cámara de Oruro",
    "workforce": {"women": 12, "men": 40},
    "registered_on": "2017-03-01",
}


@pytest.fixture
async def enrolment(
    tmp_path: Path, nats_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[ServiceProcess]:
    monkeypatch.setenv("SCORE_HTTP_REQUEST_SECONDS", str(DEADLINE))
    async with service_process("score_enrolment", tmp_path, nats_url) as running:
        yield running


def rss(pid: int) -> int:
    """The process's resident memory in bytes, as the kernel counts it."""
    status = Path(f"/proc/{pid}/status").read_text()
    [kib] = [line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")]
    return int(kib) * 1024


async def connect(service: ServiceProcess) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    address = urlsplit(service.url)
    assert address.hostname is not None and address.port is not None
    return await asyncio.open_connection(address.hostname, address.port)


async def drip(writer: asyncio.StreamWriter, data: bytes, *, every: float = 0.25) -> None:
    """Send `data` a byte at a time, until it is sent or the server has hung up."""
    for byte in data:
        writer.write(bytes([byte]))
        try:
            await writer.drain()
        except ConnectionError:
            return
        await asyncio.sleep(every)


async def cut_off(reader: asyncio.StreamReader) -> tuple[float, bytes]:
    """How long until the server answered and hung up, and what it said."""
    started = time.monotonic()
    said = b""
    with contextlib.suppress(ConnectionError):
        async with asyncio.timeout(CUT_WITHIN + 20):
            while chunk := await reader.read(65536):
                said += chunk
    return time.monotonic() - started, said


async def others_are_answered(service: ServiceProcess, *, for_seconds: float) -> list[float]:
    """Ask the service for a registration's list again and again: the seconds each took."""
    took = []
    async with httpx.AsyncClient(base_url=service.url, trust_env=False, timeout=10) as client:
        stop = time.monotonic() + for_seconds
        while time.monotonic() < stop:
            started = time.monotonic()
            response = await client.get("/v1/enterprises", headers=STAFF)
            assert response.status_code == 200, response.text
            took.append(time.monotonic() - started)
            await asyncio.sleep(0.1)
    return took


HEAD: Final = (
    b"POST /v1/enterprises HTTP/1.1\r\nHost: enrolment\r\n"
    b"Content-Type: application/json\r\n" + f"Authorization: {STAFF['Authorization']}\r\n".encode()
)


@pytest.mark.parametrize(
    ("kind", "sent_at_once", "dripped"),
    [
        ("a head sent a byte at a time", b"", HEAD + b"Content-Length: 2\r\n\r\n{}"),
        ("a body sent a byte at a time", HEAD + b"Content-Length: 400\r\n\r\n", b" " * 400),
        ("a connection that says nothing", b"", b""),
    ],
)
async def test_a_slow_client_is_cut_off_within_the_deadline_while_others_are_answered(
    enrolment: ServiceProcess, kind: str, sent_at_once: bytes, dripped: bytes
) -> None:
    connections = [await connect(enrolment) for _ in range(20)]
    for _reader, writer in connections:
        writer.write(sent_at_once)
    drips = [asyncio.create_task(drip(writer, dripped)) for _reader, writer in connections]
    answered = asyncio.create_task(others_are_answered(enrolment, for_seconds=DEADLINE + 1))
    endings = await asyncio.gather(*(cut_off(reader) for reader, _writer in connections))
    took = await answered
    for task in drips:
        task.cancel()
    for _reader, writer in connections:
        writer.close()

    slowest = max(seconds for seconds, _said in endings)
    assert slowest < CUT_WITHIN, f"{kind}: cut off after {slowest:.1f} s"
    assert all(seconds >= DEADLINE - 0.5 for seconds, _said in endings), endings
    for _seconds, said in endings:
        assert said.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), said[:200]
        assert b'"status": 408' in said, said
    assert took and max(took) < 5, took  # others were answered all along
    print(f"{kind}: 20 cut off within {slowest:.1f} s; others answered in ≤ {max(took):.2f} s")


async def test_hostile_bodies_and_heads_are_refused_and_memory_stays_bounded(
    enrolment: ServiceProcess,
) -> None:
    async with httpx.AsyncClient(base_url=enrolment.url, trust_env=False, timeout=30) as client:
        warm = await client.post("/v1/enterprises", json=ENTERPRISE, headers=STAFF)
        assert warm.status_code == 201, warm.text
        before = rss(enrolment.pid)

        deep = b'{"name": ' + b"[" * 400_000 + b"]" * 400_000 + b"}"
        huge_array = json.dumps({**ENTERPRISE, "sector": ["x"] * 150_000}).encode()
        many_keys = json.dumps({**ENTERPRISE, **{f"k{i}": i for i in range(60_000)}}).encode()
        over = b" " * (DEFAULT_MAX_BODY_BYTES + 1)
        bodies: dict[str, tuple[bytes, set[int]]] = {
            "deep JSON": (deep, {400, 413, 422}),
            "a huge array": (huge_array, {413, 422}),
            "sixty thousand keys": (many_keys, {201, 409, 413, 422}),
            "a body over the limit": (over, {413}),
        }
        statuses: dict[str, list[int]] = {}
        for _ in range(10):  # a barrage: each kind ten times
            for kind, (body, allowed) in bodies.items():
                response = await client.post(
                    "/v1/enterprises",
                    content=body,
                    headers={**STAFF, "Content-Type": "application/json"},
                )
                statuses.setdefault(kind, []).append(response.status_code)
                assert response.status_code in allowed, (kind, response.text[:300])
                assert response.headers["content-type"] == "application/problem+json", kind
                assert len(response.content) < 4000, kind  # nothing echoed back
        # A head larger than any honest client's: refused, not kept.
        for _ in range(10):
            reader, writer = await connect(enrolment)
            writer.write(HEAD + b"X-Padding: " + b"p" * 2_000_000 + b"\r\n\r\n")
            with contextlib.suppress(ConnectionError):
                await writer.drain()
            _seconds, said = await cut_off(reader)
            writer.close()
            assert said == b"" or said.startswith((b"HTTP/1.1 431 ", b"HTTP/1.1 400 ")), said[:80]

        after = rss(enrolment.pid)
        still = await client.post(
            "/v1/enterprises", json={**ENTERPRISE, "tax_id": "1122334455"}, headers=STAFF
        )
        assert still.status_code == 201, still.text
        listed = (await client.get("/v1/enterprises", headers=STAFF)).json()["items"]
        assert len(listed) <= 3  # what the barrage wrote is at most the one plausible body
    grown = (after - before) / 2**20
    assert grown < 150, f"RSS grew {grown:.0f} MiB"
    print(f"barrage {statuses}; RSS {before / 2**20:.0f} → {after / 2**20:.0f} MiB")
