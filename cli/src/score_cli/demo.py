"""`score demo` and `score seed`: the Bolivia factsheet through the public API.

`demo` starts the system like `score up`, loads the scenario, shows the indicators beside
the factsheet's figures, and keeps running. `seed` loads the scenario into a system that is
already running. Every request carries an Idempotency-Key, and a system that already holds
the scenario is left as it is, so either may be run again.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from score_cli.datadir import admin_token, running_system
from score_cli.scenario import ENTERPRISES, Request, requests
from score_cli.up import DEFAULT_DATA_DIR, DEFAULT_PORT_BASE, System, serve_until_stopped

FACTSHEET = (
    ("enterprises_trained", "Enterprises trained", "over 63"),
    ("participants_trained", "Workers and managers trained", "over 530"),
    ("employees_benefited", "Employees benefited", "over 11,800"),
    ("trainers_trained", "Trainers trained", "31"),
    ("women_share_trainers", "Women among trainers (%)", "42"),
    ("trainers_certified", "Trainers certified", "22"),
    ("regions_active", "Regions", "3"),
)
NOT_KNOWN_YET_PATIENCE = 120.0
"""Seconds to keep retrying a request the visits service has no facts for yet."""
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


class ScenarioFailed(RuntimeError):
    pass


def _fill(value: Any, values: dict[str, str]) -> Any:
    if isinstance(value, str):
        return _PLACEHOLDER.sub(lambda m: values[m[1]], value)
    if isinstance(value, dict):
        return {k: _fill(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, values) for v in value]
    return value


def load_scenario(urls: dict[str, str], token: str, *, out: Any = sys.stdout) -> dict[str, Any]:
    """Send the scenario's requests; return the indicators once they show all of it."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(headers=headers, timeout=30, trust_env=False) as http:
        indicators_url = f"{urls['indicators']}/v1/indicators"
        if _indicators(http, indicators_url)["enterprises_registered"] >= ENTERPRISES:
            print("The scenario is already loaded.", file=out)
            return _indicators(http, indicators_url)
        answers: dict[str, dict[str, Any]] = {}
        scenario = list(requests())
        completions = sum(r.path.endswith("/completions") for r in scenario)
        visits = sum(r.path.endswith("/completion") for r in scenario)
        for done, request in enumerate(scenario, start=1):
            _send(http, urls, request, answers)
            if done % 50 == 0 or done == len(scenario):
                print(f"\r  {done}/{len(scenario)} requests", end="", file=out, flush=True)
        print(file=out)
        deadline = time.monotonic() + 60
        while True:  # the indicators follow the stream: wait until they have caught up
            values = _indicators(http, indicators_url)
            # Completions are the last events of each enterprise's and each visit's story.
            if values["modules_completed"] >= completions and values["visits_completed"] >= visits:
                return values
            if time.monotonic() > deadline:
                raise ScenarioFailed("the indicators did not catch up within 60 s")
            time.sleep(0.2)


def _indicators(http: httpx.Client, url: str) -> dict[str, Any]:
    """The indicators, once the service answers them: while its projection is being rebuilt
    (a consumer catching up from the start of its stream), it answers 503 with Retry-After."""
    deadline = time.monotonic() + 60
    response = http.get(url)
    while response.status_code == 503 and time.monotonic() < deadline:
        time.sleep(min(float(response.headers.get("Retry-After", "1")), 0.5))
        response = http.get(url)
    if response.status_code != 200:
        raise ScenarioFailed(f"indicators: {response.status_code} {response.text}")
    return dict(response.json()["indicators"])


def _send(
    http: httpx.Client, urls: dict[str, str], request: Request, answers: dict[str, dict[str, Any]]
) -> None:
    values = {
        placeholder: str(answers[name.split(".")[0]][name.split(".")[1]])
        for placeholder, name in request.needs.items()
    }
    url = urls[request.service] + _fill(request.path, values)
    body, headers = _fill(request.body, values), {"Idempotency-Key": request.key}
    response = http.post(url, json=body, headers=headers)
    deadline = time.monotonic() + NOT_KNOWN_YET_PATIENCE
    while _not_known_yet(response) and time.monotonic() < deadline:
        # The visits service learns of enterprises and trainers from the enrolment stream,
        # a moment after they are recorded: retry, as its answer says.
        time.sleep(min(float(response.headers.get("Retry-After", "1")), 0.25))
        response = http.post(url, json=body, headers=headers)
    if response.status_code >= 300:
        raise ScenarioFailed(f"{request.key}: {response.status_code} {response.text}")
    if request.remember:
        answers[request.remember] = response.json()


def _not_known_yet(response: httpx.Response) -> bool:
    return response.status_code == 409 and response.json().get("type") == "/problems/not-known-yet"


def print_factsheet(values: dict[str, Any], *, out: Any = sys.stdout) -> None:
    print("\n  indicator                      factsheet (Oct 2017)   now", file=out)
    for key, label, figure in FACTSHEET:
        print(f"  {label:<30} {figure:<22} {values[key]}", file=out)


DEMO_PHASE = "phase-3"
"""The phase whose targets the demo shows: the one the factsheet was written in."""


def phase_targets(url: str, token: str, phase: str = DEMO_PHASE) -> dict[str, Any]:
    """`GET /v1/targets` of the indicators service at `url`."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(headers=headers, timeout=30, trust_env=False) as http:
        response = http.get(f"{url}/v1/targets", params={"phase": phase})
    if response.status_code != 200:
        raise ScenarioFailed(f"targets: {response.status_code} {response.text}")
    answer: dict[str, Any] = response.json()
    return answer


def print_targets(answer: dict[str, Any], *, out: Any = sys.stdout) -> None:
    print(f"\n  {answer['title']} ({answer['starts_on']} – {answer['ends_on']}): targets", file=out)
    print("  target                         aim      now    progress", file=out)
    for target in answer["targets"]:
        actual = "—" if target["actual"] is None else f"{target['actual']:g}"
        progress = "—" if target["percent"] is None else f"{target['percent']:.1f} %"
        met = "  met" if target["met"] else ""
        print(f"  {target['key']:<30} {target['target']:<8g} {actual:<6} {progress}{met}", file=out)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = commands.add_parser(
        "demo", help="run the system with the Bolivia factsheet scenario loaded"
    )
    demo.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    demo.add_argument("--nats-port", type=int, default=None)
    demo.add_argument("--port-base", type=int, default=DEFAULT_PORT_BASE)
    demo.set_defaults(handler=run_demo)
    seed = commands.add_parser("seed", help="load the scenario into a running system")
    seed.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    seed.set_defaults(handler=run_seed)


def run_demo(args: argparse.Namespace) -> int:
    system = System(args.data_dir, nats_port=args.nats_port, port_base=args.port_base)

    def after_start(system: System) -> None:
        print("\nLoading the Bolivia factsheet scenario …", flush=True)
        urls = {s.name: s.url for s in system.services}
        token = system.admin_token()
        print_factsheet(load_scenario(urls, token))
        print_targets(phase_targets(urls["indicators"], token))

    return serve_until_stopped(system, after_start=after_start)


def run_seed(args: argparse.Namespace) -> int:
    running = running_system(args.data_dir)
    if running is None:
        print(
            f"score seed: nothing is running in {args.data_dir}; start `score up`", file=sys.stderr
        )
        return 2
    token = admin_token(args.data_dir, ttl=dt.timedelta(hours=1), subject="seed")
    services = running["services"]
    assert isinstance(services, dict)
    print_factsheet(load_scenario(services, token))
    print_targets(phase_targets(str(services["indicators"]), token))
    return 0
