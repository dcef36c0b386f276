"""`score dead-letters list|retry|discard`: what the services' consumers gave up on.

Each service keeps its own dead letters in its own database and answers for them over its
admin-only operations endpoints (`/v1/ops/dead-letters`); this command asks the running
services of a data folder (or the one at `--url`), as `score replay` and `score doctor` do.
Ids are a service's own: a retry or discard by id names the service.

Exit codes: 0 done, 1 some retry or discard failed or was refused, 2 a usage or connection
problem (nothing running, a service not answering, a token refused).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from score_cli.datadir import SECRET_FILE, admin_token, running_system
from score_cli.up import DEFAULT_DATA_DIR

OK, FAILED, USAGE = 0, 1, 2

ERROR_SHOWN = 60
"""Characters of an error a table shows; `--json` has all the listing gives."""


class Unusable(Exception):
    """Nothing could be asked: no service, no token, a refusal of the token. Exit 2."""


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help="the running `score up`'s data folder (default: %(default)s)",
    )
    common.add_argument("--service", help="this service only (enrolment, visits …)")
    common.add_argument(
        "--url", help="the service's base URL (default: every service of the data folder)"
    )
    common.add_argument(
        "--token", help="an admin token (default: one made with the data folder's key)"
    )

    parser = commands.add_parser(
        "dead-letters",
        help="list, retry or discard what the services' consumers gave up on",
        description="What a service's consumers could not handle (a message that could not be "
        "parsed, or whose handler failed every attempt), kept in its database. Retrying applies "
        "it again through the consumer's inbox: an event handled meanwhile changes nothing. "
        "Exit codes: 0 done, 1 some retry or discard failed, 2 usage or connection.",
    )
    actions = parser.add_subparsers(title="actions", metavar="ACTION", required=True)

    listing = actions.add_parser(
        "list", parents=[common], help="the dead letters, newest first (no payloads)"
    )
    listing.add_argument("--consumer", help="this consumer's only")
    listing.add_argument(
        "--limit", type=int, default=100, help="at most this many per service (%(default)s)"
    )
    listing.add_argument("--json", action="store_true", help="JSON for scripts, not a table")
    listing.set_defaults(handler=run_list)

    retrying = actions.add_parser(
        "retry", parents=[common], help="retry dead letters by id, or all of them"
    )
    retrying.add_argument("ids", nargs="*", type=int, metavar="ID", help="as listed")
    retrying.add_argument("--all", action="store_true", help="every dead letter (of --consumer)")
    retrying.add_argument("--consumer", help="with --all: this consumer's only")
    retrying.add_argument("--json", action="store_true", help="JSON for scripts")
    retrying.set_defaults(handler=run_retry)

    discarding = actions.add_parser(
        "discard", parents=[common], help="delete dead letters for good, by id"
    )
    discarding.add_argument("ids", nargs="+", type=int, metavar="ID", help="as listed")
    discarding.add_argument("--json", action="store_true", help="JSON for scripts")
    discarding.set_defaults(handler=run_discard)


# Where to ask.


def services_of(args: argparse.Namespace) -> dict[str, str]:
    """The services asked, by name: the one at `--url`, or the data folder's (`--service`)."""
    if args.url:
        return {args.service or "service": args.url.rstrip("/")}
    system = running_system(args.data_dir) or {}
    running = system.get("services")
    if not isinstance(running, dict) or not running:
        raise Unusable(f"no running system in {args.data_dir} (is `score up` running?); pass --url")
    services = {str(name): str(url) for name, url in running.items()}
    if args.service is None:
        return services
    if args.service not in services:
        raise Unusable(
            f"no service {args.service!r} in {args.data_dir}; running: {', '.join(services)}"
        )
    return {args.service: services[args.service]}


def token_of(args: argparse.Namespace) -> str:
    if args.token:
        return str(args.token)
    # Making a key here would only make a token no running service accepts.
    if not (args.data_dir / SECRET_FILE).exists():
        raise Unusable(f"no token key in {args.data_dir}; pass --token")
    return admin_token(args.data_dir, ttl=dt.timedelta(minutes=30), subject="operator")


@contextmanager
def client_for(url: str, token: str) -> Iterator[httpx.Client]:
    # trust_env=False: a `score up` service is on loopback, never behind the environment's proxy.
    with httpx.Client(
        base_url=url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=60.0,
        trust_env=False,
    ) as client:
        yield client


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase
    detail = body.get("detail") if isinstance(body, dict) else None
    return str(detail or response.reason_phrase)


def _refused_token(name: str, response: httpx.Response) -> Unusable | None:
    if response.status_code in (401, 403):
        return Unusable(f"{name} refused the token ({response.status_code}): {_detail(response)}")
    return None


def _say_unusable(error: Exception) -> int:
    print(f"score dead-letters: {error}", file=sys.stderr)
    return USAGE


# list


def run_list(args: argparse.Namespace) -> int:
    try:
        services, token = services_of(args), token_of(args)
    except Unusable as error:
        return _say_unusable(error)
    found: list[dict[str, Any]] = []
    code = OK
    for name, url in services.items():
        try:
            found += [{"service": name, **item} for item in _listed(name, url, token, args)]
        except (Unusable, httpx.HTTPError) as error:
            code = _say_unusable(_unanswered(name, url, error))
    if args.json:
        print(json.dumps(found, indent=2))
    elif found:
        print(table(found))
    else:
        print("No dead letters.")
    return code


def _unanswered(name: str, url: str, error: Exception) -> Exception:
    if isinstance(error, httpx.HTTPError):
        return Unusable(f"{name} did not answer at {url} ({type(error).__name__})")
    return error


def _listed(name: str, url: str, token: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": max(1, min(args.limit, 200))}
    if args.consumer:
        params["consumer"] = args.consumer
    with client_for(url, token) as client:
        while len(items) < args.limit:
            response = client.get("/v1/ops/dead-letters", params=params)
            if refused := _refused_token(name, response):
                raise refused
            if not response.is_success:
                raise Unusable(f"{name}: {response.status_code} {_detail(response)}")
            page = response.json()
            items += page["items"]
            if page["next_cursor"] is None:
                break
            params["cursor"] = page["next_cursor"]
    return items[: args.limit]


COLUMNS = ("SERVICE", "ID", "CONSUMER", "EVENT", "DELIVERIES", "ERROR", "WHEN")


def table(items: list[dict[str, Any]]) -> str:
    """The dead letters as a table for a terminal: one line each."""
    rows = [COLUMNS] + [
        (
            item["service"],
            str(item["id"]),
            item["consumer"],
            _event(item),
            str(item["deliveries"]),
            _short(item["error"]),
            _local_time(item["recorded_at"]),
        )
        for item in items
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def _event(item: dict[str, Any]) -> str:
    kind = item.get("event_type")
    return str(kind).removeprefix("org.ilo.score.") if kind else "(unreadable)"


def _short(error: str) -> str:
    line = " ".join(error.split())
    return line if len(line) <= ERROR_SHOWN else f"{line[: ERROR_SHOWN - 1]}…"


def _local_time(iso: str) -> str:
    return dt.datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M:%S")


# retry and discard


def _one_service(args: argparse.Namespace, action: str) -> tuple[str, str]:
    services = services_of(args)
    if len(services) != 1:
        raise Unusable(
            f"ids are each service's own: name it with --service to {action} by id "
            f"(one of {', '.join(services)})"
        )
    [(name, url)] = services.items()
    return name, url


def run_retry(args: argparse.Namespace) -> int:
    if bool(args.ids) == bool(args.all):
        return _say_unusable(Unusable("retry takes ids or --all, one of the two"))
    if args.consumer and not args.all:
        return _say_unusable(Unusable("--consumer goes with --all"))
    try:
        token = token_of(args)
        services = services_of(args) if args.all else dict([_one_service(args, "retry")])
    except Unusable as error:
        return _say_unusable(error)
    outcomes: list[dict[str, Any]] = []
    code = OK
    for name, url in services.items():
        try:
            with client_for(url, token) as client:
                if args.all:
                    found = _retry_all(name, client, args.consumer)
                else:
                    found = [_retry_one(name, client, letter_id) for letter_id in args.ids]
        except (Unusable, httpx.HTTPError) as error:
            code = _say_unusable(_unanswered(name, url, error))
            continue
        outcomes += [{"service": name, **outcome} for outcome in found]
    if args.json:
        print(json.dumps(outcomes, indent=2))
    else:
        for o in outcomes:
            print(f"{o['service']} {o['id']}: {o['outcome']}: {o['detail']}")
        retried = sum(1 for o in outcomes if o["outcome"] == "retried")
        print(f"{retried} of {len(outcomes)} retried.")
    if code == OK and any(o["outcome"] != "retried" for o in outcomes):
        code = FAILED
    return code


def _retry_all(name: str, client: httpx.Client, consumer: str | None) -> list[dict[str, Any]]:
    params = {"consumer": consumer} if consumer else {}
    response = client.post("/v1/ops/dead-letters/retry", params=params)
    if refused := _refused_token(name, response):
        raise refused
    if not response.is_success:
        raise Unusable(f"{name}: {response.status_code} {_detail(response)}")
    outcomes: list[dict[str, Any]] = response.json()["outcomes"]
    return outcomes


def _retry_one(name: str, client: httpx.Client, letter_id: int) -> dict[str, Any]:
    response = client.post(f"/v1/ops/dead-letters/{letter_id}/retry")
    if refused := _refused_token(name, response):
        raise refused
    if response.is_success:
        outcome: dict[str, Any] = response.json()
        return outcome
    # A 404 (no such id) or 409 (no retry can help): this one failed, the others go on.
    kind = "refused" if response.status_code == 409 else "not found"
    return {"id": letter_id, "outcome": kind, "detail": _detail(response)}


def run_discard(args: argparse.Namespace) -> int:
    try:
        token = token_of(args)
        name, url = _one_service(args, "discard")
    except Unusable as error:
        return _say_unusable(error)
    code = OK
    outcomes: list[dict[str, Any]] = []
    try:
        with client_for(url, token) as client:
            for letter_id in args.ids:
                response = client.delete(f"/v1/ops/dead-letters/{letter_id}")
                if refused := _refused_token(name, response):
                    raise refused
                outcome = {"service": name, "id": letter_id, "discarded": response.is_success}
                if response.is_success:
                    if not args.json:
                        print(f"{name} {letter_id}: discarded")
                else:
                    outcome["error"] = _detail(response)
                    if not args.json:
                        print(f"{name} {letter_id}: {outcome['error']}", file=sys.stderr)
                    code = FAILED
                outcomes.append(outcome)
    except (Unusable, httpx.HTTPError) as error:
        return _say_unusable(_unanswered(name, url, error))
    if args.json:
        print(json.dumps(outcomes, indent=2))
    return code
