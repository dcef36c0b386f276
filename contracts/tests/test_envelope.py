"""Envelopes, subjects, streams, regions and ids: what every producer and consumer relies on."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from cloudevents.core.bindings.http import HTTPMessage, from_http, to_structured
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from score_contracts import InvalidEvent, parse
from score_contracts.envelope import CONTENT_TYPE, Envelope, UnknownEventType, parse_envelope
from score_contracts.events import (
    CATALOGUE,
    EnterpriseEnrolled,
    EnterpriseRegistered,
    Event,
    ModuleCompleted,
)
from score_contracts.examples import EXAMPLE_PORTS, example, example_envelope
from score_contracts.ids import uuid7
from score_contracts.reference import NATIONAL, REGIONS, check_region
from score_contracts.subjects import CONTEXTS, STREAMS, subject_for

BOLIVIA = (
    "la_paz",
    "cochabamba",
    "santa_cruz",
    "oruro",
    "potosi",
    "chuquisaca",
    "tarija",
    "beni",
    "pando",
)
CORRELATION = "0161fb9c-9a10-7c2f-b6a4-17e3c0d2f8e5"
CAUSE = "0161fb9c-9a11-74d0-8e1b-0a5c3f7e2d19"


def published(cls: type[Event]) -> Envelope[Event]:
    envelope: Envelope[Event] = example_envelope(
        example(cls), stream_version=3, correlation_id=CORRELATION, causation_id=CAUSE
    )
    return envelope


def as_dict(envelope: Envelope[Event]) -> dict[str, object]:
    raw: dict[str, object] = json.loads(envelope.model_dump_json())
    return raw


# --- envelopes -----------------------------------------------------------------------------


@pytest.mark.parametrize("cls", CATALOGUE, ids=lambda cls: cls.event_name)
def test_envelope_parses_back_to_an_equal_envelope(cls: type[Event]) -> None:
    envelope = published(cls)

    parsed = parse_envelope(envelope.model_dump_json())

    assert parsed == envelope
    assert type(parsed.data) is cls
    assert parsed.model_dump_json() == envelope.model_dump_json()


@pytest.mark.parametrize("cls", CATALOGUE, ids=lambda cls: cls.event_name)
def test_cloudevents_sdk_reads_the_envelope(cls: type[Event]) -> None:
    envelope = published(cls)
    message = HTTPMessage(
        headers={"Content-Type": CONTENT_TYPE}, body=envelope.model_dump_json().encode()
    )

    event = from_http(message, JSONFormat())

    assert event.get_specversion() == "1.0"
    assert event.get_id() == envelope.id
    assert event.get_type() == envelope.type == cls.event_type()
    assert event.get_source() == envelope.source == f"/score/bo/{cls.context}"
    assert event.get_subject() == envelope.subject == example(cls).aggregate_subject
    assert event.get_time() == envelope.time
    assert event.get_dataschema() == cls.dataschema(
        f"http://localhost:{EXAMPLE_PORTS[cls.context]}"
    )
    assert event.get_datacontenttype() == "application/json"
    assert event.get_extension("streamversion") == 3
    assert event.get_extension("correlationid") == CORRELATION
    assert event.get_extension("causationid") == CAUSE
    assert event.get_data() == envelope.data.model_dump(mode="json")


def test_an_event_written_by_the_cloudevents_sdk_parses() -> None:
    data = example(ModuleCompleted)
    written = CloudEvent(
        attributes={
            "type": ModuleCompleted.event_type(),
            "source": "/score/bo/enrolment",
            "subject": data.aggregate_subject,
            "dataschema": ModuleCompleted.dataschema("http://localhost:8101"),
            "datacontenttype": "application/json",
            "streamversion": 7,
            "correlationid": CORRELATION,
        },
        data=data.model_dump(mode="json"),
    )

    parsed = parse_envelope(to_structured(written, JSONFormat()).body)

    assert parsed.id == written.get_id()
    assert parsed.time == written.get_time()
    assert parsed.streamversion == 7
    assert parsed.correlationid == CORRELATION
    assert parsed.causationid is None
    assert parsed.data == data


def test_envelope_typed_with_the_base_event_still_writes_the_payload() -> None:
    # What a relay holding events of many types does: one envelope type for all of them.
    event = example(EnterpriseEnrolled)
    envelope = Envelope[Event].model_validate(dict(example_envelope(event)))

    assert as_dict(envelope)["data"] == event.model_dump(mode="json")


def test_unknown_type_is_refused_by_name() -> None:
    raw = as_dict(published(ModuleCompleted)) | {"type": "org.ilo.score.enrolment.audited.v1"}

    with pytest.raises(UnknownEventType, match="audited"):
        parse_envelope(json.dumps(raw))


def test_a_later_major_version_is_an_unknown_type() -> None:
    raw = as_dict(published(ModuleCompleted))
    raw["type"] = str(raw["type"]).replace(".v1", ".v2")

    with pytest.raises(UnknownEventType):
        parse_envelope(json.dumps(raw))


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "not json",
        '{"specversion": "1.0", "type": ',
        "[]",
        json.dumps({k: v for k, v in as_dict(published(ModuleCompleted)).items() if k != "data"}),
        json.dumps(as_dict(published(ModuleCompleted)) | {"data": None}),
        json.dumps(as_dict(published(ModuleCompleted)) | {"data": {"module": 1}}),
        json.dumps({k: v for k, v in as_dict(published(ModuleCompleted)).items() if k != "id"}),
        json.dumps(as_dict(published(ModuleCompleted)) | {"specversion": "0.3"}),
        json.dumps({k: v for k, v in as_dict(published(ModuleCompleted)).items() if k != "type"}),
        json.dumps(as_dict(published(ModuleCompleted)) | {"streamversion": 0}),
    ],
    ids=[
        "empty",
        "not json",
        "truncated",
        "not an object",
        "no data",
        "null data",
        "incomplete data",
        "no id",
        "other specversion",
        "no type",
        "stream version 0",
    ],
)
def test_malformed_envelopes_are_value_errors(raw: str) -> None:
    with pytest.raises(ValueError) as raised:
        parse_envelope(raw)

    assert not isinstance(raised.value, UnknownEventType)


def test_invalid_payload_is_a_value_error() -> None:
    raw = as_dict(published(EnterpriseEnrolled))
    raw["data"] = {**dict(raw["data"]), "module": 9}  # type: ignore[call-overload]

    with pytest.raises(ValueError, match="module"):
        parse_envelope(json.dumps(raw))


def test_a_newer_minor_version_with_an_extra_field_still_parses() -> None:
    envelope = published(EnterpriseEnrolled)
    raw = as_dict(envelope)
    raw["data"] = {**dict(raw["data"]), "cohort": "2018-A"}  # type: ignore[call-overload]
    raw["traceparent"] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

    assert parse_envelope(json.dumps(raw)) == envelope


def test_omitted_optional_fields_parse_as_absent() -> None:
    envelope = published(EnterpriseEnrolled)
    raw = json.loads(envelope.model_dump_json(exclude_none=True))

    assert parse_envelope(json.dumps(raw)) == envelope


# --- subjects and streams ------------------------------------------------------------------

TOKEN = re.compile(r"^[a-z][a-z0-9_]*$")


def nats_matches(pattern: str, subject: str) -> bool:
    """NATS subject matching: `*` is one token, a final `>` is one or more tokens."""
    wanted, tokens = pattern.split("."), subject.split(".")
    for position, token in enumerate(wanted):
        if token == ">":
            return len(tokens) > position
        if position >= len(tokens) or token not in ("*", tokens[position]):
            return False
    return len(tokens) == len(wanted)


def test_nats_matching_as_the_server_does() -> None:
    assert nats_matches("score.bo.santa_cruz.>", "score.bo.santa_cruz.enrolment.x.v1")
    assert nats_matches("score.*.*.visits.>", "score.bo.beni.visits.visit_scheduled.v1")
    assert not nats_matches("score.*.*.visits.>", "score.bo.beni.visits")
    assert not nats_matches("score.*.visits.>", "score.bo.beni.visits.visit_scheduled.v1")
    assert not nats_matches("score.bo.*", "score.bo.beni.visits")


@pytest.mark.parametrize("cls", CATALOGUE, ids=lambda cls: cls.event_name)
@pytest.mark.parametrize("region", [*BOLIVIA, None])
def test_subject_is_lowercase_snake_case_tokens(cls: type[Event], region: str | None) -> None:
    subject = subject_for(cls, "bo", region)
    tokens = subject.split(".")

    assert tokens == [
        "score",
        "bo",
        region or NATIONAL,
        cls.context,
        cls.event_name,
        f"v{cls.major}",
    ]
    assert all(TOKEN.match(token) for token in tokens)
    assert subject_for(example(cls), "bo", region) == subject


def test_an_event_without_region_is_national() -> None:
    assert subject_for(ModuleCompleted, "bo", None) == (
        "score.bo.national.enrolment.module_completed.v1"
    )


@pytest.mark.parametrize(
    ("country", "region"),
    [
        ("BO", "la_paz"),
        ("bol", "la_paz"),
        ("", "la_paz"),
        ("bo", "La_Paz"),
        ("bo", "la paz"),
        ("bo", "la-paz"),
        ("bo", "la.paz"),
        ("bo", "*"),
        ("bo", ">"),
        ("bo", ""),
        ("bo", "1st_district"),
    ],
)
def test_bad_subject_tokens_are_refused(country: str, region: str) -> None:
    with pytest.raises(ValueError):
        subject_for(ModuleCompleted, country, region)


def test_one_stream_per_context() -> None:
    assert set(STREAMS) == set(CONTEXTS)
    assert {stream.name for stream in STREAMS.values()} == {
        "SCORE_ENROLMENT",
        "SCORE_VISITS",
        "SCORE_INDICATORS",
        "SCORE_NOTIFICATIONS",
    }
    assert all(stream.context == context for context, stream in STREAMS.items())


@pytest.mark.parametrize("cls", CATALOGUE, ids=lambda cls: cls.event_name)
def test_each_subject_is_captured_by_its_own_stream_only(cls: type[Event]) -> None:
    for region in [*BOLIVIA, None]:
        subject = subject_for(cls, "bo", region)
        capturing = {
            stream.name
            for stream in STREAMS.values()
            if any(nats_matches(pattern, subject) for pattern in stream.subjects)
        }
        assert capturing == {STREAMS[cls.context].name}, subject


def test_a_chamber_filter_sees_its_region_only() -> None:
    santa_cruz = "score.bo.santa_cruz.>"

    assert nats_matches(santa_cruz, subject_for(EnterpriseEnrolled, "bo", "santa_cruz"))
    assert not nats_matches(santa_cruz, subject_for(EnterpriseEnrolled, "bo", "la_paz"))
    assert not nats_matches(santa_cruz, subject_for(EnterpriseEnrolled, "bo", None))


# --- regions -------------------------------------------------------------------------------


def test_bolivia_has_its_nine_departments() -> None:
    assert sorted(REGIONS["bo"]) == sorted(BOLIVIA)


@pytest.mark.parametrize("region", BOLIVIA)
def test_each_department_of_bolivia_is_a_region(region: str) -> None:
    assert check_region("bo", region) == region


@pytest.mark.parametrize("region", ["lima", "Santa_Cruz", "santa cruz", "potosí", NATIONAL, ""])
def test_other_names_are_not_regions_of_bolivia(region: str) -> None:
    with pytest.raises(ValueError):
        check_region("bo", region)


@pytest.mark.parametrize(("country", "region"), [("zz", "atlantis"), ("pe", "lima"), ("", "x")])
def test_a_country_whose_regions_are_not_known_is_refused(country: str, region: str) -> None:
    with pytest.raises(ValueError, match="unknown country"):
        check_region(country, region)


def test_a_refusal_quotes_only_a_short_prefix_of_a_huge_value() -> None:
    with pytest.raises(ValueError) as refused:
        check_region("bo", "x" * 10_000_000)
    assert len(str(refused.value)) < 300
    assert "10000000 characters" in str(refused.value)


# --- ids -----------------------------------------------------------------------------------


def test_uuid7_has_version_and_variant_bits() -> None:
    value = uuid.UUID(uuid7())

    assert value.version == 7
    assert value.variant == uuid.RFC_4122


def test_uuid7_starts_with_the_current_unix_milliseconds() -> None:
    before = dt.datetime.now(dt.UTC)
    value = uuid.UUID(uuid7())
    after = dt.datetime.now(dt.UTC)

    millis = value.int >> 80
    assert int(before.timestamp() * 1000) - 1 <= millis <= int(after.timestamp() * 1000) + 1


def test_uuid7_strictly_increases_within_and_across_milliseconds() -> None:
    # Ten thousand in a tight loop: many fall in one millisecond, so this holds only because
    # the generator counts within the millisecond (RFC 9562 §6.2), not by chance.
    made = [uuid7() for _ in range(10_000)]

    assert all(earlier < later for earlier, later in itertools.pairwise(made))
    parsed = [uuid.UUID(value) for value in made]
    assert all(value.version == 7 and value.variant == uuid.RFC_4122 for value in parsed)
    assert all(str(value) == text for value, text in zip(parsed, made, strict=True))
    millis = [value.int >> 80 for value in parsed]
    assert len(set(millis)) < len(millis)  # several ids did share a millisecond


def test_uuid7_is_unique() -> None:
    many = [uuid7() for _ in range(20_000)]

    assert len(set(many)) == len(many)


# --- parse: what a consumer calls on each message -------------------------------------------


def test_parse_gives_the_typed_event_of_a_message() -> None:
    envelope = example_envelope(example(EnterpriseEnrolled))

    class Msg:  # what nats-py hands a subscriber: the body in `data`
        data = envelope.model_dump_json().encode()

    parsed = parse(Msg())
    typed = parse(Msg.data, EnterpriseEnrolled)

    assert parsed == envelope
    assert typed.data.delivery_cost.value == example(EnterpriseEnrolled).delivery_cost.value


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda body: body["data"]["workforce"].update(women="20"), "data.workforce.women"),
        (lambda body: body.pop("time"), "time"),
        (lambda body: body.update(streamversion=0), "streamversion"),
        (lambda body: body.update(type="org.ilo.score.enrolment.audited.v1"), "type"),
    ],
    ids=["a count as text", "no time", "version zero", "unknown type"],
)
def test_parse_names_the_field_that_is_wrong(
    change: Callable[[dict[str, Any]], object], field: str
) -> None:
    body = example_envelope(example(EnterpriseRegistered)).model_dump(mode="json")
    change(body)

    with pytest.raises(InvalidEvent) as raised:
        parse(json.dumps(body))

    assert raised.value.field == field
    assert str(raised.value).startswith(f"{field}: ")


def test_parse_refuses_what_is_not_json_or_not_the_type_expected() -> None:
    with pytest.raises(InvalidEvent, match=r"^\(message\): not JSON"):
        parse(b"{not json")
    with pytest.raises(InvalidEvent, match="not org.ilo.score.enrolment.enterprise_enrolled"):
        parse(example_envelope(example(ModuleCompleted)).model_dump_json(), EnterpriseEnrolled)
