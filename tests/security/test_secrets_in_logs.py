"""No secret and no personal data in any log line, of any service or of nats-server, through
an end-to-end run: `score demo` (the four services and nats-server as processes, logging at
debug, the chambers' webhook and SMTP sinks) and, while it runs, an enterprise, a trainer and
a chamber's subscriptions of known names, tax id, e-mail address and webhook secret, the
milestone they reach delivered, and the requests an attacker or a clumsy client would send
with them: a second registration of the tax id, values refused, a forged token.

What is looked for: every enterprise's name and tax id and every trainer's name the run
recorded, the e-mail addresses and webhook secrets of the subscriptions, the tokens used,
the key tokens are signed with, the key of the webhooks' secrets, and the broker's passwords.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from score_cli import broker_config
from score_cli.datadir import auth_secret, notifications_key
from score_cli.demo import DEMO_FOLDER, demo, mail_address
from score_cli.nats_server import free_port
from score_cli.scenario import REGIONS, requests
from score_cli.sinks import Sinks
from score_cli.up import System, free_port_base
from score_testing.streams import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

ENTERPRISE = {
    "name": "Zoila Quispe Mamani Tejidos",
    "tax_id": "7319284650",
    "region": "oruro",
    "sector": "textiles",
    "chamber": "Cámara Departamental de Industria de Oruro",
    "workforce": {"women": 31, "men": 9},
    "registered_on": "2017-02-01",
}
TRAINER = {
    "name": "Rosa Huanca Condori",
    "sex": "female",
    "region": "oruro",
    "organisation": "CDIO",
}
MAIL = "zoila.quispe@camara-oruro.example"


def test_no_log_line_holds_a_secret_or_a_persons_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SCORE_LOG_LEVEL", "debug")
    data_dir = tmp_path / "score"
    seen: dict[str, Any] = {}

    def during(system: System, sinks: Sinks) -> None:
        seen.update(_a_chamber_told_of_its_first_trained_enterprise(system, sinks))

    assert demo(data_dir, nats_port=free_port(), port_base=free_port_base(), until=during) == 0
    capsys.readouterr()

    secrets = _secrets(data_dir, seen)
    logs = sorted((data_dir / "logs").glob("*.log"))
    assert {log.stem for log in logs} >= {
        "nats",
        "enrolment",
        "visits",
        "indicators",
        "notifications",
    }
    lines = [(log.name, line) for log in logs for line in log.read_text("utf-8").splitlines()]
    # The logs speak of the records (by id), so their silence on the rest is not emptiness.
    assert any(seen["enterprise_id"] in line for _name, line in lines)
    assert any(seen["subscription_id"] in line for _name, line in lines)
    found = [
        (name, what, line[:300])
        for what, pattern in secrets.items()
        for name, line in lines
        if pattern.search(line)
    ]
    assert found == [], found
    print(f"{len(lines)} log lines of {len(logs)} logs, {len(secrets)} secrets looked for: none")


def _a_chamber_told_of_its_first_trained_enterprise(system: System, sinks: Sinks) -> dict[str, Any]:
    token = system.admin_token()
    staff = {"Authorization": f"Bearer {token}"}
    enrolment, notifications = system.url("enrolment"), system.url("notifications")
    with httpx.Client(headers=staff, trust_env=False, timeout=30) as http:
        hook = http.post(
            f"{notifications}/v1/subscriptions",
            json={
                "chamber": ENTERPRISE["chamber"],
                "regions": ["oruro"],
                "channel": {"kind": "webhook", "url": sinks.webhooks.url("oruro")},
            },
        )
        assert hook.status_code == 201, hook.text
        sinks.webhooks.secrets["oruro"] = hook.json()["secret"]
        mail = http.post(
            f"{notifications}/v1/subscriptions",
            json={
                "chamber": ENTERPRISE["chamber"],
                "regions": ["oruro"],
                "channel": {"kind": "email", "address": MAIL},
            },
        )
        assert mail.status_code == 201, mail.text

        registered = http.post(f"{enrolment}/v1/enterprises", json=ENTERPRISE)
        assert registered.status_code == 201, registered.text
        enterprise_id = registered.json()["id"]
        enrolled = http.post(
            f"{enrolment}/v1/enterprises/{enterprise_id}/enrolments",
            json={"module": 1, "delivery": "direct", "delivery_cost": {"amount": "3000"}},
        )
        assert enrolled.status_code == 201, enrolled.text
        trainer = http.post(f"{enrolment}/v1/trainers", json=TRAINER)
        assert trainer.status_code == 201, trainer.text
        trained = http.post(
            f"{enrolment}/v1/enterprises/{enterprise_id}/trainings",
            json={
                "enrolment_id": enrolled.json()["enrolment_id"],
                "trainer_id": trainer.json()["id"],
                "managers": {"women": 1, "men": 1},
                "workers": {"women": 3, "men": 2},
            },
        )
        assert trained.status_code == 201, trained.text

        # What a clumsy client or an attacker sends with the same data.
        again = http.post(f"{enrolment}/v1/enterprises", json=ENTERPRISE)
        assert again.status_code == 409, again.text
        for refused in (
            {**ENTERPRISE, "tax_id": ENTERPRISE["tax_id"] + "\x00"},
            {**ENTERPRISE, "name": ENTERPRISE["name"] + "\x1b[2J", "tax_id": "1"},
            {**ENTERPRISE, "workforce": {"women": MAIL, "men": 1}},
        ):
            assert http.post(f"{enrolment}/v1/enterprises", json=refused).status_code == 422
        forged = {"Authorization": f"Bearer {token[:-4]}AAAA"}
        assert http.get(f"{enrolment}/v1/enterprises", headers=forged).status_code == 401
        assert http.get(f"{notifications}/v1/subscriptions/{hook.json()['id']}").status_code == 200

        def delivered() -> bool:
            answer = http.get(
                f"{notifications}/v1/deliveries", params={"subscription_id": hook.json()["id"]}
            )
            return any(d["status"] == "delivered" for d in answer.json()["items"])

        asyncio.run(wait_for(delivered, within=60))
        return {
            "enterprise_id": enterprise_id,
            "subscription_id": hook.json()["id"],
            "webhook_secret": hook.json()["secret"],
            "tokens": [token],
        }


def _secrets(data_dir: Path, seen: dict[str, Any]) -> dict[str, re.Pattern[str]]:
    """What no log line may hold, each as a pattern that does not match inside a longer word
    or number (a tax id of seven digits inside a timestamp is not that tax id)."""
    values: dict[str, str] = {
        "our enterprise's name": ENTERPRISE["name"],
        "our enterprise's tax id": ENTERPRISE["tax_id"],
        "our trainer's name": TRAINER["name"],
        "our chamber's e-mail": MAIL,
        "our webhook's secret": seen["webhook_secret"],
        "the key tokens are signed with": auth_secret(data_dir),
        "the key of the webhooks' secrets": notifications_key(data_dir),
    }
    for n, token in enumerate(seen["tokens"]):
        values[f"token {n}"] = token
    for user, password in broker_config.passwords(data_dir).items():
        values[f"the broker's password of {user}"] = password
    for region in REGIONS:
        values[f"the demo's e-mail of {region}"] = mail_address(region)
    kept = json.loads((data_dir / DEMO_FOLDER / "webhooks.json").read_text())
    for region, subscription in kept["subscriptions"].items():
        values[f"the demo's webhook secret of {region}"] = subscription["secret"]
    for request in requests():
        if request.path in {"/v1/enterprises", "/v1/trainers"}:
            values[f"{request.key}'s name"] = request.body["name"]
            if "tax_id" in request.body:
                values[f"{request.key}'s tax id"] = request.body["tax_id"]
    return {
        what: re.compile(rf"(?<![0-9A-Za-z]){re.escape(value)}(?![0-9A-Za-z])")
        for what, value in values.items()
    }
