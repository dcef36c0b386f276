"""`score republish` re-drives a stored range to a stream that lost it, both ends included."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from score_cli.main import main
from score_cli.republish import Republished, _republish
from score_testing.stores import stored_trainers
from score_testing.streams import stream_messages

pytestmark = pytest.mark.nats


async def test_from_1_on_a_fresh_stream_puts_position_1_on_it(
    tmp_path: Path, nats_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    url, ids = await stored_trainers(tmp_path, 3)
    arguments = ["republish", "enrolment", "--from", "1", "--database-url", url]
    assert await asyncio.to_thread(main, [*arguments, "--nats-url", nats_url]) == 0
    messages = await stream_messages(nats_url, "SCORE_ENROLMENT")
    assert [h["Nats-Msg-Id"] for h, _ in messages] == ids
    said = capsys.readouterr().out
    assert "republished 3 events of enrolment to SCORE_ENROLMENT: positions 1 to 3" in said
    assert "3 of them were new to it" in said


async def test_from_and_to_both_include_their_position(tmp_path: Path, nats_url: str) -> None:
    url, ids = await stored_trainers(tmp_path, 5)
    arguments = ["republish", "enrolment", "--from", "2", "--to", "4", "--database-url", url]
    assert await asyncio.to_thread(main, [*arguments, "--nats-url", nats_url]) == 0
    messages = await stream_messages(nats_url, "SCORE_ENROLMENT")
    assert [h["Nats-Msg-Id"] for h, _ in messages] == ids[1:4]


def test_position_0_and_a_range_ending_before_it_starts_are_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["republish", "enrolment", "--from", "0"])
    assert "positions start at 1" in capsys.readouterr().err
    assert main(["republish", "enrolment", "--from", "5", "--to", "4"]) == 2
    assert "--to 4 is before --from 5" in capsys.readouterr().err


async def test_a_lost_stream_is_re_driven_from_the_store_and_a_second_run_adds_nothing(
    tmp_path: Path, nats_url: str
) -> None:
    url, ids = await stored_trainers(tmp_path, 5)

    assert await _republish("enrolment", url, nats_url, first=3) == Republished(3, 3, 5, added=3)
    messages = await stream_messages(nats_url, "SCORE_ENROLMENT")
    assert [h["Nats-Msg-Id"] for h, _ in messages] == ids[2:]

    assert await _republish("enrolment", url, nats_url) == Republished(5, 1, 5, added=2)
    messages = await stream_messages(nats_url, "SCORE_ENROLMENT")
    assert sorted(h["Nats-Msg-Id"] for h, _ in messages) == sorted(ids)  # no copies


async def test_republished_events_name_the_schemas_where_the_service_serves_them(
    tmp_path: Path, nats_url: str
) -> None:
    url, _ = await stored_trainers(tmp_path, 2)
    public = "https://enrolment.score.example.org/"
    arguments = ["republish", "enrolment", "--database-url", url, "--public-url", public]
    assert await asyncio.to_thread(main, [*arguments, "--nats-url", nats_url]) == 0
    messages = await stream_messages(nats_url, "SCORE_ENROLMENT")
    assert [body["dataschema"] for _, body in messages] == [
        "https://enrolment.score.example.org/schemas/enrolment/trainer_registered.v1.data.json"
    ] * 2
