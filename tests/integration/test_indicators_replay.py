"""`score replay indicators-projection`: the command follows the rebuild the service runs in
the background, with its bar, to the end."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import httpx
import pytest

from score_cli.main import main
from score_cli.replay import TARGETS, ProgressBar, replay
from score_cli.up import System
from score_contracts.events import EnterpriseRegistered, Event
from score_contracts.examples import example, example_envelope
from score_indicators.main import build_app
from score_indicators.settings import IndicatorsSettings
from score_testing.service import TEST_SECRET, bearer, serving
from score_testing.streams import publish_envelopes, wait_for

ADMIN = bearer("admin")


def enterprises(count: int) -> list[Event]:
    registered = example(EnterpriseRegistered)
    return [registered.model_copy(update={"enterprise_id": f"ent-{n:04}"}) for n in range(count)]


async def publish(nats_url: str, events: list[Event]) -> None:
    envelopes = [example_envelope(event) for event in events]
    await publish_envelopes(nats_url, envelopes, region="santa_cruz")


@pytest.mark.nats
async def test_the_command_follows_the_rebuild_to_the_end(tmp_path: Path, nats_url: str) -> None:
    await publish(nats_url, enterprises(400))
    app = build_app(
        IndicatorsSettings(
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'indicators.db'}",
            nats_url=nats_url,
            auth_secret=TEST_SECRET,
            log_format="console",
        )
    )
    async with serving(app) as client:
        client.headers.update(ADMIN)

        async def registered() -> dict[str, Any] | None:
            response = await client.get("/v1/indicators")
            if response.status_code != 200:
                return None
            values: dict[str, Any] = response.json()["indicators"]
            return values if values["enterprises_registered"] == 400 else None

        live = await wait_for(registered, within=30)
        out = io.StringIO()
        progress = await replay(
            client,
            TARGETS["indicators-projection"],
            bar=ProgressBar(out, "Rebuilding indicators views", live=True),
            interval=0.01,
        )
        assert progress["state"] == "built" and progress["done"]
        assert progress["events"] == 400
        assert "400/400 events 100%" in out.getvalue()
        assert (await client.get("/v1/indicators")).json()["indicators"] == live


@pytest.mark.e2e
@pytest.mark.timeout(180)
def test_score_replay_rebuilds_the_projection_of_a_running_system(
    system: System, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["replay", "indicators-projection", "--data-dir", str(system.data_dir)]) == 0
    assert "Rebuilt the indicators' projection" in capsys.readouterr().out
    indicators = httpx.get(
        f"{system.url('indicators')}/v1/indicators",
        headers={"Authorization": f"Bearer {system.admin_token()}"},
        trust_env=False,
    )
    assert indicators.status_code == 200
