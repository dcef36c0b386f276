"""The compose file's wiring, proved without Docker: each service started as a process with
exactly the environment `deploy/compose.yaml` gives it — the only changes are host names
mapped to loopback, free ports, and the PostgreSQL roles and databases named for this test on
this machine's server — after the `migrate` step, answers `/readyz`."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import yaml
from sqlalchemy.engine import make_url

from score_chassis.settings import ServiceSettings
from score_cli.nats_server import free_port
from score_testing.databases import require_postgres

pytestmark = [pytest.mark.e2e, pytest.mark.nats, pytest.mark.postgres]

ROOT = Path(__file__).parents[2]
DEPLOY = ROOT / "deploy"
SERVICES = ("enrolment", "visits", "indicators", "notifications")
DOTENV = {  # the test's deploy/.env
    "SCORE_AUTH_SECRET": "wiring-test-auth-secret-of-forty-characters",
    "SCORE_NOTIFICATIONS_SECRET_KEY": "wiring-test-notifications-key-of-forty-chars",
    "POSTGRES_PASSWORD": "unused",
    "GRAFANA_ADMIN_PASSWORD": "unused",
    **{f"POSTGRES_{s.upper()}_PASSWORD": f"pg{uuid.uuid4().hex}" for s in SERVICES},
    **{f"NATS_{u.upper()}_PASSWORD": f"nats{uuid.uuid4().hex}" for u in (*SERVICES, "operator")},
}
_VARIABLE = re.compile(r"\$\$|\$\{([A-Za-z0-9_]+)(?:(:?)([-?])([^}]*))?\}")


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's `${VAR}`, `${VAR-default}`, `${VAR:-default}`, `${VAR?error}`, `$$`."""

    def value(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, colon, kind, word = match.groups()
        present = name in env and (not colon or env[name] != "")
        if present:
            return env[name]
        if kind == "?":
            raise KeyError(f"{name}: {word}")
        return word or ""

    return _VARIABLE.sub(value, text)


def test_a_required_secret_left_unset_is_named() -> None:
    with pytest.raises(KeyError, match="SCORE_AUTH_SECRET"):
        interpolate(
            (DEPLOY / "compose.yaml").read_text(),
            {k: v for k, v in DOTENV.items() if k != "SCORE_AUTH_SECRET"},
        )


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{url} exited {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    pytest.fail(f"{url} not ready in {timeout}s:\n{log.read_text()[-3000:]}")


@pytest.fixture
def databases(postgres_server_url: str | None) -> Iterator[dict[str, tuple[str, str]]]:
    """A role and a database for each service, by the service: (role, database)."""
    server = make_url(require_postgres(postgres_server_url)).set(drivername="postgresql+psycopg")
    names = {s: (f"w{uuid.uuid4().hex[:8]}_{s}",) * 2 for s in SERVICES}
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for service, (role, database) in names.items():
            password = DOTENV[f"POSTGRES_{service.upper()}_PASSWORD"]
            conn.execute(sa.text(f"CREATE ROLE \"{role}\" LOGIN PASSWORD '{password}'"))
            conn.execute(sa.text(f'CREATE DATABASE "{database}" OWNER "{role}"'))
    try:
        yield names
    finally:
        with admin.connect() as conn:
            for role, database in names.values():
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
                conn.execute(sa.text(f'DROP ROLE IF EXISTS "{role}"'))
        admin.dispose()


def test_every_service_started_as_compose_says_becomes_ready(
    tmp_path: Path, postgres_server_url: str | None, databases: dict[str, tuple[str, str]]
) -> None:
    if not (DEPLOY / "nats" / "nats.conf").exists():
        pytest.skip("deploy/nats/nats.conf (the broker's config) is not in this checkout yet")
    pg = make_url(require_postgres(postgres_server_url))
    compose: dict[str, Any] = yaml.safe_load(
        interpolate((DEPLOY / "compose.yaml").read_text(), DOTENV)
    )
    nats_port, monitor_port = free_port(), free_port()
    # The file as it is, but for its store (a volume in compose), beside its auth.conf; flags
    # override its listen address and monitoring port. (nats-server refuses a `-sd` flag
    # beside the file's `store_dir`.)
    config = (DEPLOY / "nats" / "nats.conf").read_text()
    assert "store_dir: /data/jetstream" in config
    (tmp_path / "nats.conf").write_text(
        config.replace("store_dir: /data/jetstream", f'store_dir: "{tmp_path / "jetstream"}"')
    )
    shutil.copy(DEPLOY / "nats" / "auth.conf", tmp_path / "auth.conf")
    nats = subprocess.Popen(
        [Path(sys.executable).parent / "nats-server", "-c", tmp_path / "nats.conf",
         "-a", "127.0.0.1", "-p", str(nats_port), "-m", str(monitor_port)],
        env={"PATH": os.environ["PATH"], **compose["services"]["nats"]["environment"]},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    processes: list[subprocess.Popen[bytes]] = [nats]

    def mapped(env: dict[str, Any]) -> dict[str, str]:
        out: dict[str, str] = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
        for name, raw in env.items():
            value = str(raw).replace("nats://nats:4222", f"nats://127.0.0.1:{nats_port}")
            for service, (role, database) in databases.items():
                value = value.replace(f"//{service}:", f"//{role}:").replace(
                    f"@postgres:5432/{service}", f"@{pg.host}:{pg.port or 5432}/{database}"
                )
            out[name] = value
        return out

    try:
        migrate = subprocess.run(
            [sys.executable, "-m", "score_cli.main", *compose["services"]["migrate"]["command"]],
            env=mapped(compose["services"]["migrate"]["environment"]),
            capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path,
        )  # fmt: skip
        assert migrate.returncode == 0, migrate.stdout + migrate.stderr
        assert migrate.stdout.count(": migrated ") == len(SERVICES), migrate.stdout
        ready: dict[str, str] = {}
        for service in SERVICES:
            env = mapped(compose["services"][service]["environment"])
            port = free_port()
            env |= {"SCORE_HTTP_HOST": "127.0.0.1", "SCORE_HTTP_PORT": str(port)}
            if "SCORE_PROGRAMME" in env:  # the file the compose file mounts there
                env["SCORE_PROGRAMME"] = str(DEPLOY / "config" / "programme.toml")
            log = tmp_path / f"{service}.log"
            with log.open("wb") as out:
                processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", f"score_{service}"],
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        cwd=tmp_path,
                    )  # fmt: skip
                )
            ready[service] = f"http://127.0.0.1:{port}/readyz"
        for (service, url), process in zip(ready.items(), processes[1:], strict=True):
            _wait_ready(url, process, tmp_path / f"{service}.log", timeout=60)
            body = httpx.get(url).json()
            assert body["checks"]["database"] == "ok", (service, body)
        if "nats_user" in ServiceSettings.model_fields:  # the services log in to the broker
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and any(
                httpx.get(url).json()["checks"]["nats"] != "ok" for url in ready.values()
            ):
                time.sleep(0.5)
            for service, url in ready.items():
                assert httpx.get(url).json()["checks"]["nats"] == "ok", service
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
