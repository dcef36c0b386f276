"""The deploy folder passes the tools an operator's machine would run it through — the Compose
specification, hadolint, promtool, nats-server — and names only what the services really
have: the metrics the dashboard and the alerts query, the variables `.env.example` lists."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

ROOT = Path(__file__).parents[2]
DEPLOY = ROOT / "deploy"
BIN = Path(sys.executable).parent
SERVICES = ("enrolment", "visits", "indicators", "notifications")
DOCKERFILES = [ROOT / "services" / s / "Dockerfile" for s in SERVICES] + [ROOT / "cli/Dockerfile"]
NATS_PASSWORDS = {
    f"NATS_{user.upper()}_PASSWORD": f"test-{user}-password" for user in (*SERVICES, "operator")
}


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


def _run(
    *command: str | Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(c) for c in command], capture_output=True, text=True, timeout=60, env=env, check=False
    )


def test_the_compose_file_follows_the_compose_specification() -> None:
    done = _run(
        BIN / "check-jsonschema", "--builtin-schema", "vendor.compose-spec", DEPLOY / "compose.yaml"
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_each_dockerfile_passes_hadolint_without_a_remark(dockerfile: Path) -> None:
    done = _run(BIN / "hadolint", "--no-color", dockerfile)
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_is_built_from_its_own_dockerfile_and_waits_for_what_it_needs(
    service: str,
) -> None:
    spec = compose()["services"][service]
    assert spec["build"] == {"context": "..", "dockerfile": f"services/{service}/Dockerfile"}
    assert spec["depends_on"] == {
        "nats": {"condition": "service_healthy"},
        "postgres": {"condition": "service_healthy"},
        "migrate": {"condition": "service_completed_successfully"},
    }
    env = spec["environment"]
    assert env["SCORE_MIGRATE_ON_START"] == "false"
    assert env["SCORE_NATS_USER"] == service
    dockerfile = (ROOT / "services" / service / "Dockerfile").read_text()
    port = env["SCORE_HTTP_PORT"]
    assert f"EXPOSE {port}" in dockerfile and "/readyz" in dockerfile
    assert f":{port}" in spec["ports"][0]


def test_every_variable_compose_requires_is_in_the_env_example() -> None:
    text = (DEPLOY / "compose.yaml").read_text()
    required = set(re.findall(r"\$\{([A-Z0-9_]+):?\?", text))
    example = (DEPLOY / ".env.example").read_text()
    listed = set(re.findall(r"^([A-Z0-9_]+)=", example, flags=re.MULTILINE))
    assert required, "no required variable: the secrets must be asked for"
    assert required <= listed, f"missing from .env.example: {sorted(required - listed)}"


def test_the_postgres_init_script_is_valid_shell_and_makes_each_services_database() -> None:
    script = DEPLOY / "postgres" / "init-databases.sh"
    assert _run("sh", "-n", script).returncode == 0
    text = script.read_text()
    assert "for service in " + " ".join(SERVICES) + ";" in text


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool is absent (Debian's prometheus package; .ci/run installs it)")
    return found


def test_the_prometheus_config_and_alert_rules_pass_promtool() -> None:
    promtool = _promtool()
    config = _run(promtool, "check", "config", DEPLOY / "prometheus" / "prometheus.yml")
    assert config.returncode == 0, config.stdout + config.stderr
    rules = _run(promtool, "check", "rules", DEPLOY / "prometheus" / "alerts.yml")
    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert "SUCCESS: 5 rules found" in rules.stdout


def _exported() -> set[str]:
    """Every sample name the services' /metrics can show, from the registry they fill."""
    import score_enrolment.main  # noqa: F401  (each module registers its metrics on import)
    import score_indicators.main  # noqa: F401
    import score_notifications.main  # noqa: F401
    import score_visits.main  # noqa: F401

    names: set[str] = {"up"}  # Prometheus' own, for each target it scrapes
    for family in REGISTRY.collect():
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"]}
        names.update(family.name + s for s in suffixes.get(family.type, [""]))
    return names


_PROMQL_WORDS = {"sum", "by", "max", "rate", "increase", "histogram_quantile", "le", "without"}


def _metrics_in(expression: str) -> set[str]:
    # Drop label matchers and ranges, then keep the identifiers that are not PromQL's own.
    bare = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\"[^\"]*\"", "", expression)
    words = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", bare))
    grouped = set(re.findall(r"(?:by|without)\s*\(([^)]*)\)", bare))
    labels = {w.strip() for group in grouped for w in group.split(",")}
    return {w for w in words - _PROMQL_WORDS - labels if not w.isdigit()}


def test_the_dashboards_queries_name_metrics_the_services_export() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "score.json").read_text())
    expressions = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    named = set().union(*map(_metrics_in, expressions))
    assert {"score_consumer_lag", "score_notifications_total"} <= named
    assert named <= _exported(), f"not exported: {sorted(named - _exported())}"


def test_the_alerts_name_metrics_the_services_export() -> None:
    groups = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())["groups"]
    rules = {r["alert"]: _metrics_in(r["expr"]) for g in groups for r in g["rules"]}
    assert set(rules) == {
        "ScoreServiceDown",
        "ScoreConsumerLagging",
        "ScoreOutboxBacklog",
        "ScoreDeadLetters",
        "ScoreNotificationsFailing",
    }
    named = set().union(*rules.values())
    assert named <= _exported(), f"not exported: {sorted(named - _exported())}"


@pytest.mark.parametrize("node", [1, 2, 3])
def test_each_cluster_nodes_config_passes_nats_server(node: int) -> None:
    if not (DEPLOY / "nats" / "auth.conf").exists():
        pytest.skip("deploy/nats/auth.conf (the broker's users) is not in this checkout yet")
    done = _run(
        BIN / "nats-server",
        "-t",
        "-c",
        DEPLOY / "nats" / "cluster" / f"node-{node}.conf",
        env={"PATH": "/usr/bin:/bin", **NATS_PASSWORDS},
    )
    assert done.returncode == 0, done.stdout + done.stderr
