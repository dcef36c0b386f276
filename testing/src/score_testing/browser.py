"""A real browser for tests of a page: Debian's Chromium, headless, driven over the DevTools
protocol; and an app served over real HTTP for it to open.

The protocol is spoken directly over a WebSocket (the `websockets` package): a page is opened
as a target with a session of its own, and the test evaluates JavaScript in it. Nothing is
downloaded: the browser is the machine's `chromium` (`apt-get install chromium`). Where it is
missing the tests that need it are skipped, saying why — unless `SCORE_REQUIRE_BROWSER=1`, as
CI sets, which makes that a failure.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from websockets.asyncio.client import ClientConnection, connect

from score_cli.nats_server import free_port

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def chromium_path() -> str | None:
    """The browser to drive: `SCORE_CHROMIUM` if set, else the first found on PATH."""
    given = os.environ.get("SCORE_CHROMIUM")
    if given:
        return shutil.which(given)
    return next((found for name in CHROMIUM_NAMES if (found := shutil.which(name))), None)


def require_chromium() -> str:
    """The browser's path; else a skip (or, with `SCORE_REQUIRE_BROWSER=1`, a failure)."""
    path = chromium_path()
    if path:
        return path
    reason = (
        f"no browser: {os.environ['SCORE_CHROMIUM']!r} (SCORE_CHROMIUM) is not a program"
        if os.environ.get("SCORE_CHROMIUM")
        else "no chromium on PATH: apt-get install chromium (or set SCORE_CHROMIUM)"
    )
    if os.environ.get("SCORE_REQUIRE_BROWSER") == "1":
        pytest.fail(f"SCORE_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


@dataclass(frozen=True)
class Served:
    url: str
    server: uvicorn.Server

    def stop(self) -> None:
        """Ask the server to stop, as SIGTERM does."""
        self.server.should_exit = True


@contextlib.asynccontextmanager
async def served(app: FastAPI) -> AsyncIterator[Served]:
    """`app` served by uvicorn on a free loopback port, lifespan and all, until the block
    ends. Stopped as SIGTERM would stop it (`should_exit`), and the server must then finish
    within seconds: a response that never ends fails the test."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(), name=f"uvicorn-{port}")
    async with asyncio.timeout(30):
        while not server.started:
            if task.done():
                task.result()  # raises what stopped it
                raise RuntimeError("uvicorn stopped before it started")
            await asyncio.sleep(0.02)
    running = Served(f"http://127.0.0.1:{port}", server)
    try:
        yield running
    finally:
        running.stop()
        await asyncio.wait_for(task, timeout=10)


class DevToolsError(Exception):
    pass


@dataclass
class Page:
    """One tab, attached with a session of its own."""

    browser: Browser
    target_id: str
    session_id: str
    errors: list[str] = field(default_factory=list)
    """What the page reported as errors: uncaught exceptions, console errors, and the
    browser's own (a Content-Security-Policy violation, a failed load)."""

    async def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self.browser.send(method, params, session_id=self.session_id)

    async def goto(self, url: str, *, within: float = 10.0) -> None:
        """Open `url` and wait until it has loaded (scripts deferred to the load run)."""
        answer = await self.send("Page.navigate", {"url": url})
        if answer.get("errorText"):
            raise DevToolsError(f"could not open {url}: {answer['errorText']}")
        await self.wait_for("document.readyState === 'complete'", within=within)

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (awaited if a promise)."""
        answer = await self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in answer:
            details = answer["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise DevToolsError(f"{expression!r} threw: {text}")
        return answer["result"].get("value")

    async def wait_for(self, expression: str, *, within: float = 5.0) -> Any:
        """The first truthy value of `expression`, polled every 50 ms; TimeoutError after
        `within` seconds, with the page's errors."""
        try:
            async with asyncio.timeout(within):
                while True:
                    with contextlib.suppress(DevToolsError):  # a page being replaced
                        value = await self.evaluate(expression)
                        if value:
                            return value
                    await asyncio.sleep(0.05)
        except TimeoutError:
            raise TimeoutError(
                f"{expression!r} still false after {within}s; page errors: {self.errors}"
            ) from None

    async def set_viewport(self, width: int, height: int, *, mobile: bool = False) -> None:
        await self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile},
        )

    async def screenshot(self, path: Path) -> Path:
        """A PNG of the whole page, to look at."""
        answer = await self.send(
            "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}
        )
        await asyncio.to_thread(path.write_bytes, base64.b64decode(answer["data"]))
        return path

    async def close(self) -> None:
        await self.browser.send("Target.closeTarget", {"targetId": self.target_id})

    def _on(self, method: str, params: dict[str, Any]) -> None:
        if method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            self.errors.append(
                details.get("exception", {}).get("description") or details.get("text", "")
            )
        elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            said = (a.get("value", a.get("description")) for a in params["args"])
            self.errors.append(" ".join(str(part) for part in said))
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            self.errors.append(params["entry"].get("text", ""))


class Browser:
    """A headless Chromium and the DevTools connection to it."""

    def __init__(self, connection: ClientConnection) -> None:
        self._connection = connection
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._pages: dict[str, Page] = {}
        self._reader = asyncio.create_task(self._read(), name="devtools-reader")

    async def send(
        self, method: str, params: dict[str, Any] | None = None, *, session_id: str | None = None
    ) -> dict[str, Any]:
        message_id = next(self._ids)
        message: dict[str, Any] = {"id": message_id, "method": method, "params": params or {}}
        if session_id is not None:
            message["sessionId"] = session_id
        answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[message_id] = answer
        await self._connection.send(json.dumps(message))
        async with asyncio.timeout(30):
            return await answer

    async def _read(self) -> None:
        async for raw in self._connection:
            message = json.loads(raw)
            if "id" in message:
                answer = self._waiting.pop(message["id"], None)
                if answer is None or answer.done():
                    continue
                if "error" in message:
                    answer.set_exception(DevToolsError(str(message["error"])))
                else:
                    answer.set_result(message.get("result", {}))
            elif (page := self._pages.get(message.get("sessionId", ""))) is not None:
                page._on(message["method"], message.get("params", {}))
        for answer in self._waiting.values():
            if not answer.done():
                answer.set_exception(DevToolsError("the browser closed the connection"))

    async def new_page(self, url: str | None = None) -> Page:
        """A new tab (its own sessionStorage), opened at `url` if given."""
        target = await self.send("Target.createTarget", {"url": "about:blank"})
        attached = await self.send(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )
        page = Page(self, target["targetId"], attached["sessionId"])
        self._pages[page.session_id] = page
        for domain in ("Page", "Runtime", "Log"):
            await page.send(f"{domain}.enable")
        if url is not None:
            await page.goto(url)
        return page

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.send("Browser.close")
        await self._connection.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._reader


@contextlib.asynccontextmanager
async def chromium(executable: str | None = None) -> AsyncIterator[Browser]:
    """A headless Chromium with a fresh profile, stopped at the end of the block."""
    executable = executable or require_chromium()
    # The browser's helpers may still be writing to the profile as it is removed.
    with tempfile.TemporaryDirectory(
        prefix="score-chromium-", ignore_cleanup_errors=True
    ) as profile:
        profile_dir = Path(profile)
        log = (profile_dir / "chromium.log").open("wb")
        process = await asyncio.create_subprocess_exec(
            executable,
            "--headless",
            "--no-sandbox",  # as root, as on CI; the pages are the tests' own
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--no-default-browser-check",
            "--password-store=basic",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile_dir}",
            "about:blank",
            stdout=log,
            stderr=log,
        )
        try:
            url = await _devtools_url(profile_dir / "DevToolsActivePort", process)
            async with connect(url, max_size=None, open_timeout=10) as connection:
                browser = Browser(connection)
                try:
                    yield browser
                finally:
                    await browser.close()
        finally:
            with contextlib.suppress(TimeoutError):  # it closes itself on Browser.close
                await asyncio.wait_for(process.wait(), timeout=3)
            if process.returncode is None:
                process.terminate()
                try:
                    await asyncio.wait_for(process.wait(), timeout=5)
                except TimeoutError:
                    process.kill()
                    await process.wait()
            log.close()


async def _devtools_url(port_file: Path, process: asyncio.subprocess.Process) -> str:
    """The browser's DevTools WebSocket, which it writes to its profile once it listens."""
    async with asyncio.timeout(20):
        while True:
            if process.returncode is not None:
                raise DevToolsError(f"chromium exited with {process.returncode} before listening")
            lines = await asyncio.to_thread(_lines_of, port_file)
            if len(lines) >= 2:  # written whole once the browser listens
                return f"ws://127.0.0.1:{lines[0]}{lines[1]}"
            await asyncio.sleep(0.05)


def _lines_of(path: Path) -> list[str]:
    try:
        return path.read_text().split()
    except FileNotFoundError:
        return []
