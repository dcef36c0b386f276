"""`score demo` and `score seed`: the Bolivia factsheet through the public API.

`demo` starts a webhook sink and an SMTP sink on 127.0.0.1 (`sinks.py`), starts the system
like `score up` with the notifications service pointed at them, subscribes a chamber per
region of the scenario to each, loads the scenario, shows the indicators beside the
factsheet's figures and the milestones beside the notifications the sinks received, and keeps
running (printing what arrives later). `seed` loads the scenario into a system that is
already running. Every request carries an Idempotency-Key, and a system that already holds
the scenario is left as it is, so either may be run again; so are the demo's subscriptions
(see `subscribe_chambers`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from score_chassis.http.problems import NOT_KNOWN_YET
from score_cli.datadir import admin_token, running_system
from score_cli.scenario import CHAMBERS, ENTERPRISES, REGIONS, Request, requests
from score_cli.sinks import HOOKS_PATH, Inbox, Received, Sinks, running_sinks
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


def load_scenario(urls: dict[str, str], token: str, *, out: Any = None) -> dict[str, Any]:
    """Send the scenario's requests; return the indicators once they show all of it."""
    out = sys.stdout if out is None else out  # the one of the moment, not of the import
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
    # The type is absolute, at the service's public address: its path says which it is.
    type_ = str(response.json().get("type", ""))
    return response.status_code == 409 and type_.endswith(NOT_KNOWN_YET.path)


def print_factsheet(values: dict[str, Any], *, out: Any = None) -> None:
    out = sys.stdout if out is None else out
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


def print_targets(answer: dict[str, Any], *, out: Any = None) -> None:
    out = sys.stdout if out is None else out
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
    return demo(args.data_dir, nats_port=args.nats_port, port_base=args.port_base)


def demo(
    data_dir: Path,
    *,
    nats_port: int | None = None,
    port_base: int = DEFAULT_PORT_BASE,
    until: Callable[[System, Sinks], None] | None = None,
) -> int:
    """The demo; it serves until a stop signal, or, given `until`, until that returns (it is
    called once everything is shown, with the system and the sinks still running)."""
    folder = Path(data_dir).absolute() / DEMO_FOLDER
    kept = _kept_webhooks(folder)
    inbox = Inbox(folder / "received.jsonl")
    with running_sinks(inbox, webhook_port=kept.get("port")) as sinks:
        system = System(
            data_dir,
            nats_port=nats_port,
            port_base=port_base,
            environment={"notifications": sinks.environment(dict(os.environ))},
        )

        def after_start(system: System) -> None:
            urls = {s.name: s.url for s in system.services}
            token = system.admin_token()
            notifying = "notifications" in urls and "notifications" not in system.given_up
            subscribed: list[dict[str, Any]] = []
            if notifying:
                print("\nSubscribing a chamber per region to the demo's sinks …", flush=True)
                subscribed = subscribe_chambers(urls["notifications"], token, sinks, folder)
            print("\nLoading the Bolivia factsheet scenario …", flush=True)
            print_factsheet(load_scenario(urls, token))
            print_targets(phase_targets(urls["indicators"], token))
            if notifying:
                shown = wait_for_notifications(urls, token, subscribed, inbox)
                print_notifications(shown, sinks)
                inbox.on_arrival = _print_arrival
            if until is not None:
                try:
                    until(system, sinks)
                finally:
                    system.request_stop("the demo was shown")

        return serve_until_stopped(system, after_start=after_start)


# The notifications: the demo's subscriptions, and what the sinks received.

DEMO_FOLDER = "demo"
"""Under the data folder: the demo's webhook secrets and sink port (`webhooks.json`, readable
by its owner only) and what the sinks received (`received.jsonl`)."""
MAIL_DOMAIN = "demo.score.example"
WEBHOOKS = {"la_paz": ("es", True), "cochabamba": ("en", False), "santa_cruz": ("es", False)}
"""Each region's webhook subscription: its language, and whether it is also told of the
country's milestones."""
MAILS = {"la_paz": "es", "cochabamba": "es", "santa_cruz": "en"}
"""Each region's e-mail subscription and its language."""
WAIT_FOR_NOTIFICATIONS = 20.0
"""Seconds to wait for the sinks to receive what the milestones owe them."""
MILESTONES_SETTLE = 2.0
"""Seconds the milestones listed must stay the same before the wait may end: the indicators
look for milestones a moment after their figures move (later while a look takes long), so
the last of a scenario's may not be listed the moment it is loaded."""


def mail_address(region: str) -> str:
    return f"score-{region.replace('_', '-')}@{MAIL_DOMAIN}"


def _kept_webhooks(folder: Path) -> dict[str, Any]:
    path = folder / "webhooks.json"
    if not path.exists():
        return {}
    kept: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return kept


def _keep_webhooks(folder: Path, kept: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "webhooks.json"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        json.dump(kept, file, indent=2)


def subscribe_chambers(url: str, token: str, sinks: Sinks, folder: Path) -> list[dict[str, Any]]:
    """Subscribe each region's chamber to the webhook sink and to the SMTP sink, unless it
    already is; the demo's subscriptions.

    Run again on the same data folder, it keeps what it made: an e-mail subscription is found
    by its address, a webhook one by its URL and the secret kept in `folder` (a secret is
    answered only when the subscription is made). A webhook subscription the sink cannot
    verify (its secret lost, or its URL on another port than the sink's now) is deleted and
    made again. Either way there is one subscription of each per region.
    """
    kept = _kept_webhooks(folder)
    secrets: dict[str, dict[str, str]] = kept.get("subscriptions", {})
    headers = {"Authorization": f"Bearer {token}"}
    made: list[dict[str, Any]] = []
    with httpx.Client(base_url=url, headers=headers, timeout=30, trust_env=False) as http:
        existing = _answer(http.get("/v1/subscriptions"), 200)["items"]
        for region in REGIONS:
            language, national = WEBHOOKS[region]
            hook = sinks.webhooks.url(region)
            theirs = [s for s in existing if _demo_hook(s) == region]
            known = secrets.get(region, {})
            usable = next(
                (
                    s
                    for s in theirs
                    if s["id"] == known.get("id")
                    and s["channel"]["url"] == hook
                    and s["status"] == "active"
                ),
                None,
            )
            for stale in (s for s in theirs if s is not usable):
                _answer(http.delete(f"/v1/subscriptions/{stale['id']}"), 204)
            if usable is None:
                channel = {"kind": "webhook", "url": hook}
                usable = _subscribe(http, region, national, channel, language)
                known = {"id": usable["id"], "secret": usable["secret"]}
            secrets[region] = known
            sinks.webhooks.secrets[region] = known["secret"]
            made.append(usable)

            address = mail_address(region)
            theirs = [s for s in existing if s["channel"].get("address") == address]
            mailed = next((s for s in theirs if s["status"] == "active"), None)
            if mailed is None:
                channel = {"kind": "email", "address": address}
                mailed = _subscribe(http, region, False, channel, MAILS[region])
            made.append(mailed)
    _keep_webhooks(folder, {"port": sinks.webhooks.port, "subscriptions": secrets})
    return made


def _demo_hook(subscription: dict[str, Any]) -> str | None:
    """The region a subscription of a demo's webhook sink is for, if it is one."""
    hook = subscription["channel"].get("url") or ""
    if not hook.startswith("http://127.0.0.1:") or HOOKS_PATH not in hook:
        return None
    return hook.split(HOOKS_PATH, 1)[1]


def _subscribe(
    http: httpx.Client, region: str, national: bool, channel: dict[str, str], language: str
) -> dict[str, Any]:
    body = {
        "chamber": CHAMBERS[region],
        "regions": [region],
        "national": national,
        "channel": channel,
        "language": language,
    }
    made: dict[str, Any] = _answer(http.post("/v1/subscriptions", json=body), 201)
    return made


def _answer(response: httpx.Response, status: int) -> Any:
    if response.status_code != status:
        raise ScenarioFailed(
            f"notifications: {response.request.method} {response.request.url.path}: "
            f"{response.status_code} {response.text}"
        )
    return response.json() if response.content else None


@dataclass(frozen=True)
class Owed:
    """A milestone, a demo subscription it matches, and what became of its notification."""

    milestone: dict[str, Any]
    subscription: dict[str, Any]
    delivery: dict[str, Any] | None
    """The service's record of the notification, once it has routed the milestone."""
    received: Received | None


@dataclass(frozen=True)
class Shown:
    milestones: list[dict[str, Any]]
    """Oldest first."""
    owed: list[Owed]
    complete: bool
    """Every notification a milestone owes the demo's subscriptions was received (or given
    up on) in time."""


def _matches(subscription: dict[str, Any], scope: str) -> bool:
    return (
        bool(subscription["national"]) if scope == "national" else scope in subscription["regions"]
    )


def _moment(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def wait_for_notifications(
    urls: dict[str, str],
    token: str,
    subscribed: list[dict[str, Any]],
    inbox: Inbox,
    *,
    within: float = WAIT_FOR_NOTIFICATIONS,
) -> Shown:
    """Wait (at most `within` seconds) until the sinks have received a notification for each
    milestone `GET /v1/milestones` lists and each demo subscription it matches that was made
    before it was reached (one made later is never told of it), and the milestones listed
    have settled; what they received."""
    headers = {"Authorization": f"Bearer {token}"}
    ids = {s["id"] for s in subscribed}
    deadline = time.monotonic() + within
    listed_before: set[str] = set()
    unchanged_since = time.monotonic()
    with httpx.Client(headers=headers, timeout=30, trust_env=False) as http:
        while True:
            listed = _answer(
                http.get(
                    f"{urls['indicators']}/v1/milestones", params={"limit": 1000, "lang": "en"}
                ),
                200,
            )["milestones"]
            records = _answer(
                http.get(f"{urls['notifications']}/v1/deliveries", params={"limit": 1000}), 200
            )["items"]
            deliveries = {
                (d["milestone"]["milestone_id"], d["subscription_id"]): d
                for d in records
                if d["subscription_id"] in ids
            }
            milestones = sorted(listed, key=lambda m: (m["reached_at"], m["milestone_id"]))
            if {m["milestone_id"] for m in listed} != listed_before:
                listed_before = {m["milestone_id"] for m in listed}
                unchanged_since = time.monotonic()
            settled_list = time.monotonic() - unchanged_since >= MILESTONES_SETTLE
            owed: list[Owed] = []
            complete = True
            for milestone in milestones:
                for subscription in subscribed:
                    if not _matches(subscription, milestone["scope"]):
                        continue
                    delivery = deliveries.get((milestone["milestone_id"], subscription["id"]))
                    received = inbox.get(delivery["id"]) if delivery else None
                    made_before = _moment(subscription["created_at"]) < _moment(
                        milestone["reached_at"]
                    )
                    if made_before and received is None:
                        settled = delivery is not None and delivery["status"] != "pending"
                        complete = complete and settled
                    if made_before or received is not None:
                        owed.append(Owed(milestone, subscription, delivery, received))
            if (complete and settled_list) or time.monotonic() > deadline:
                return Shown(milestones, owed, complete)
            time.sleep(0.25)


WIDTH = 100
"""The demo's output fits a terminal this wide."""
_INDENT = " " * 13


def print_notifications(shown: Shown, sinks: Sinks, *, out: Any = None) -> None:
    out = sys.stdout if out is None else out
    print(
        "\n  Milestones, and what the chambers' sinks received\n"
        f"  (webhooks at {sinks.webhooks.url('<region>')}, e-mail at 127.0.0.1:{sinks.smtp.port})",
        file=out,
    )
    if not shown.milestones:
        print("  No milestone reached yet.", file=out)
    for milestone in shown.milestones:
        when = _moment(milestone["reached_at"]).astimezone().strftime("%Y-%m-%d %H:%M:%S")
        head = (
            f"{when}  {milestone['scope']}: {milestone['title']} "
            f"({milestone['indicator']} {milestone['threshold']})"
        )
        print(textwrap.fill(head, WIDTH, initial_indent="\n  ", subsequent_indent="    "), file=out)
        told = [o for o in shown.owed if o.milestone is milestone]
        if not told:
            print("    no demo subscription was made before it", file=out)
        for owed in told:
            for line in _told(owed):
                print(line, file=out)
    if not shown.complete:
        print(
            f"\n  Not everything arrived within {WAIT_FOR_NOTIFICATIONS:g} s; what arrives later "
            "is printed as it does.",
            file=out,
        )
    if sinks.webhooks.refused:
        print(f"  The webhook sink refused {len(sinks.webhooks.refused)} request(s).", file=out)
    print(flush=True, file=out)


def _told(owed: Owed) -> list[str]:
    subscription, received = owed.subscription, owed.received
    kind = subscription["channel"]["kind"]
    label = "webhook" if kind == "webhook" else "e-mail"
    language = subscription["language"]
    if received is None:
        delivery = owed.delivery
        state = "not routed yet" if delivery is None else delivery["status"]
        if delivery is not None and delivery["last_error"]:
            state += f", {delivery['attempts']} attempt(s), last error {delivery['last_error']}"
        where = subscription["channel"].get("url") or subscription["channel"].get("address")
        return [f"    {label:<8} not received ({state}): {where}"]
    if kind == "webhook":
        first = f"    {label:<8} verified webhook-id {received.notification_id}"
        first += f"  ({received.to}, {language})"
        body = received.text
    else:
        first = f"    {label:<8} to {received.to} ({language})"
        body = received.subject
    wrapped = textwrap.wrap(body, WIDTH, initial_indent=_INDENT, subsequent_indent=_INDENT)
    return [first, *wrapped]


def _print_arrival(received: Received) -> None:
    """What the sinks receive once the demo is shown: one line each, as it arrives."""
    what = received.text if received.kind == "webhook" else received.subject
    line = f"{time.strftime('%H:%M:%S')}  {received.kind} {received.to}: {what}"
    print(textwrap.shorten(line, WIDTH, placeholder=" …"), flush=True)


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
