"""A service run as it is deployed: its own process, logging JSON to a file, on a free port."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from score_cli.nats_server import free_port
from score_testing.service import TEST_SECRET
from score_testing.streams import wait_for


@dataclass(frozen=True)
class ServiceProcess:
    url: str
    log_file: Path
    pid: int = 0
    """The process's id, for a test that kills it."""

    def log(self) -> str:
        return self.log_file.read_text("utf-8")


@contextlib.asynccontextmanager
async def service_process(
    module: str, workdir: Path, nats_url: str, *, ready_within: float = 30.0
) -> AsyncIterator[ServiceProcess]:
    """Run `python -m <module>` on SQLite in `workdir` until the block ends (then SIGTERM).

    Yields once `/readyz` answers with NATS connected.
    """
    port = free_port()
    log_file = workdir / f"{module}.log"
    env = {
        **os.environ,
        "SCORE_DATABASE_URL": f"sqlite+aiosqlite:///{workdir / f'{module}.db'}",
        "SCORE_NATS_URL": nats_url,
        "SCORE_AUTH_SECRET": TEST_SECRET,
        "SCORE_HTTP_PORT": str(port),
        "SCORE_LOG_FORMAT": "json",
        "SCORE_LOG_LEVEL": "debug",
    }
    with log_file.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            module,
            env=env,
            cwd=workdir,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )
    running = ServiceProcess(url=f"http://127.0.0.1:{port}", log_file=log_file, pid=process.pid)
    try:
        async with httpx.AsyncClient(base_url=running.url, trust_env=False) as client:
            await wait_for(lambda: _ready(client), within=ready_within)
        yield running
    finally:
        with contextlib.suppress(ProcessLookupError):  # a test may have killed it
            process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), timeout=15)


async def _ready(client: httpx.AsyncClient) -> bool:
    try:
        response = await client.get("/readyz")
    except httpx.TransportError:
        return False
    return response.status_code == 200 and response.json()["checks"]["nats"] == "ok"
