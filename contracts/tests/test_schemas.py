"""The committed JSON Schemas are the published contract: fresh, and never broken in place."""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import Field

from score_contracts.events import (
    BY_TYPE,
    CATALOGUE,
    EnterpriseDetailsCorrected,
    EnterpriseEnrolled,
    EnterpriseRegistered,
    Event,
    Headcount,
    Improvement,
    VisitCompleted,
)
from score_contracts.events.base import Count, Text
from score_contracts.examples import example, example_envelope
from score_contracts.schemas import (
    SCHEMAS_DIR,
    IncompatibleChange,
    envelope_schema,
    incompatibilities,
    incompatible_changes,
    index,
    load_schema,
    orphaned_schemas,
    problems,
    stale_files,
    subject_filter,
    write,
)
from score_contracts.schemas.__main__ import main
from score_contracts.subjects import STREAMS, subject_for

JsonSchema = dict[str, Any]


def committed(cls: type[Event]) -> JsonSchema:
    schema: JsonSchema = json.loads((SCHEMAS_DIR / cls.schema_path()).read_text("utf-8"))
    return schema


# --- the committed files -------------------------------------------------------------------


def test_committed_schemas_index_and_catalogue_are_up_to_date() -> None:
    stale = stale_files()
    assert not stale, "\n".join(["The models changed; run `make schemas` and commit:", *stale])


def test_no_model_is_incompatible_with_its_committed_schema() -> None:
    breaking = incompatible_changes()
    assert not breaking, "\n".join(
        ["Published schemas may only gain optional fields within a major version:", *breaking]
    )


def test_every_committed_event_schema_belongs_to_a_model() -> None:
    assert orphaned_schemas() == []


def test_check_command_passes_on_the_repository() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "score_contracts.schemas", "check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("cls", CATALOGUE, ids=lambda cls: cls.event_name)
def test_schema_names_its_event(cls: type[Event]) -> None:
    schema = committed(cls)

    assert schema["$id"] == cls.schema_uri()
    assert schema["title"] == cls.event_type()
    assert schema["properties"]["type"]["const"] == cls.event_type()
    assert re.fullmatch(
        schema["properties"]["dataschema"]["pattern"], cls.dataschema("http://localhost:8101")
    )
    assert {"specversion", "id", "source", "type", "data"} <= set(schema["required"])


def committed_data(cls: type[Event]) -> JsonSchema:
    schema: JsonSchema = json.loads((SCHEMAS_DIR / cls.data_schema_path()).read_text("utf-8"))
    return schema


@pytest.mark.parametrize("cls", CATALOGUE, ids=lambda cls: cls.event_name)
def test_the_data_schema_is_the_envelopes_data(cls: type[Event]) -> None:
    envelope, data = committed(cls), committed_data(cls)
    payload = envelope["$defs"][envelope["properties"]["data"]["$ref"].rsplit("/", 1)[-1]]

    assert data["$id"] == cls.data_schema_uri()
    assert data["properties"] == payload["properties"]
    assert data["required"] == payload["required"]
    # Every shared part the payload refers to, as the envelope defines it.
    assert {k: v for k, v in envelope["$defs"].items() if k != cls.__name__} == data.get(
        "$defs", {}
    )


def test_every_example_validates_against_the_schema_its_dataschema_names() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    for cls in CATALOGUE:
        envelope = example_envelope(example(cls)).model_dump(mode="json")
        path = envelope["dataschema"].split("/schemas/", 1)[1]
        assert path == cls.data_schema_path()
        validator = jsonschema.Draft202012Validator(
            load_schema(path), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
        )
        validator.validate(envelope["data"])


def test_a_data_schema_is_held_to_the_evolution_rules(published: tuple[Path, Path]) -> None:
    schemas, page = published
    file = schemas / EnterpriseEnrolled.data_schema_path()
    schema = json.loads(file.read_text("utf-8"))
    schema["properties"]["module"]["maximum"] = 4  # as if v1 had allowed four modules only
    file.write_text(json.dumps(schema), "utf-8")

    found = problems(schemas, page)

    assert any("enterprise_enrolled.v1.data.json: module: maximum" in p for p in found)


def test_index_lists_every_type_with_its_schema_and_subject_filter() -> None:
    listed = json.loads((SCHEMAS_DIR / "index.json").read_text("utf-8"))["events"]

    assert listed == index()["events"]
    assert set(listed) == set(BY_TYPE)
    for event_type, entry in listed.items():
        cls = BY_TYPE[event_type]
        assert (SCHEMAS_DIR / entry["schema"]).is_file()
        assert (SCHEMAS_DIR / entry["data_schema"]).is_file()
        assert entry["stream"] == STREAMS[cls.context].name
        assert entry["subject"] == subject_filter(cls)
        published_on = subject_for(cls, "bo", "oruro").split(".")
        assert entry["subject"].split(".") == [published_on[0], "*", "*", *published_on[3:]]


# --- examples against the committed schemas ------------------------------------------------


@pytest.mark.parametrize("cls", CATALOGUE, ids=lambda cls: cls.event_name)
def test_example_has_the_fields_its_committed_schema_lists(cls: type[Event]) -> None:
    schema = committed(cls)
    payload = schema["$defs"][schema["properties"]["data"]["$ref"].rsplit("/", 1)[-1]]
    data = example(cls).model_dump(mode="json")

    assert set(payload["required"]) <= data.keys()
    assert data.keys() <= payload["properties"].keys()


def test_every_example_envelope_validates_against_its_committed_schema() -> None:
    # jsonschema is not a dependency of the workspace; the test runs wherever it is installed.
    jsonschema = pytest.importorskip("jsonschema")
    for cls in CATALOGUE:
        envelope = example_envelope(example(cls), correlation_id="c-1", causation_id="c-2")
        validator = jsonschema.Draft202012Validator(
            committed(cls), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
        )
        validator.validate(envelope.model_dump(mode="json"))


# --- write and check on a scratch copy -----------------------------------------------------


@pytest.fixture
def published(tmp_path: Path) -> tuple[Path, Path]:
    schemas, page = tmp_path / "schemas", tmp_path / "events.md"
    write(schemas, page)
    return schemas, page


def test_a_fresh_write_has_no_problems(published: tuple[Path, Path]) -> None:
    assert problems(*published) == []
    assert write(*published) == []  # nothing to rewrite


def test_check_names_missing_and_edited_files(published: tuple[Path, Path]) -> None:
    schemas, page = published
    (schemas / EnterpriseEnrolled.schema_path()).unlink()
    page.write_text("# edited by hand\n", "utf-8")

    found = problems(schemas, page)

    assert any("enterprise_enrolled.v1.json: missing" in p and "make schemas" in p for p in found)
    assert any("events.md: out of date" in p and "make schemas" in p for p in found)
    assert main(["check", "--schemas", str(schemas), "--page", str(page)]) == 1


def test_check_names_a_schema_no_model_publishes(published: tuple[Path, Path]) -> None:
    schemas, page = published
    (schemas / "enrolment" / "enterprise_audited.v1.json").write_text("{}", "utf-8")

    assert [p for p in problems(schemas, page) if "enterprise_audited" in p] != []


def test_write_refuses_to_republish_an_incompatible_schema(published: tuple[Path, Path]) -> None:
    schemas, page = published
    file = schemas / EnterpriseRegistered.schema_path()
    # As if v1 had been published with a field that the model has since lost.
    schema = json.loads(file.read_text("utf-8"))
    payload = schema["$defs"]["EnterpriseRegistered"]
    payload["properties"]["legal_form"] = {"type": "string"}
    payload["required"].append("legal_form")
    file.write_text(json.dumps(schema), "utf-8")

    with pytest.raises(IncompatibleChange) as refused:
        write(schemas, page)
    found = problems(schemas, page)

    assert "data.legal_form: removed" in str(refused.value)
    assert json.loads(file.read_text("utf-8")) == schema  # left as published
    assert any("legal_form" in p and "new major version" in p for p in found)
    assert not any("out of date" in p and "enterprise_registered" in p for p in found)
    assert main(["write", "--schemas", str(schemas), "--page", str(page)]) == 1
    assert write(schemas, page, allow_incompatible=True) == [file]


# --- the evolution rules -------------------------------------------------------------------
# Real before/after pairs: the committed schema of a catalogue event against the schema of
# the same event after a change to its model.


class HeadcountWithApprentices(Headcount):
    apprentices: Count | None = None


class HeadcountCountingApprentices(Headcount):
    apprentices: Count


class ImprovementWithPhoto(Improvement):
    photo_url: str


class RegisteredWithBranch(EnterpriseRegistered):
    branch: Text | None = None


class RegisteredWithRequiredBranch(EnterpriseRegistered):
    branch: Text


class RegisteredWithApprentices(EnterpriseRegistered):
    workforce: HeadcountWithApprentices


class RegisteredCountingApprentices(EnterpriseRegistered):
    workforce: HeadcountCountingApprentices


class RegisteredNeedingReason(EnterpriseRegistered):
    size_exception_reason: Text


class RegisteredAtInstant(EnterpriseRegistered):
    registered_on: dt.datetime


class RegisteredWithShortSectors(EnterpriseRegistered):
    sector: str = Field(min_length=1, max_length=100)


class EnrolledInModuleNamed(EnterpriseEnrolled):
    module: str  # type: ignore[assignment]


class EnrolledOnlyDirect(EnterpriseEnrolled):
    delivery: Literal["direct"]


class EnrolledOnline(EnterpriseEnrolled):
    delivery: Literal["direct", "partner", "online"]  # type: ignore[assignment]


class CorrectedCountingApprentices(EnterpriseDetailsCorrected):
    workforce: HeadcountCountingApprentices | None = None


class CompletedWithPhotos(VisitCompleted):
    improvements: list[ImprovementWithPhoto] = Field(default=[], max_length=100)  # type: ignore[assignment]


def test_an_unchanged_model_is_compatible() -> None:
    assert (
        incompatibilities(committed(EnterpriseRegistered), envelope_schema(EnterpriseRegistered))
        == []
    )


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (EnterpriseRegistered, RegisteredWithBranch),
        (EnterpriseRegistered, RegisteredWithApprentices),
    ],
    ids=["new optional field", "new optional field in a nested object"],
)
def test_new_optional_fields_are_compatible(before: type[Event], after: type[Event]) -> None:
    assert incompatibilities(committed(before), envelope_schema(after)) == []


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        (EnterpriseRegistered, RegisteredWithRequiredBranch, "data.branch: new required"),
        (
            EnterpriseRegistered,
            RegisteredCountingApprentices,
            "data.workforce.apprentices: new required",
        ),
        (
            EnterpriseDetailsCorrected,
            CorrectedCountingApprentices,
            "data.workforce (anyOf 1).apprentices: new required",
        ),
        (VisitCompleted, CompletedWithPhotos, "data.improvements[].photo_url: new required"),
        (EnterpriseRegistered, RegisteredNeedingReason, "data.size_exception_reason: now required"),
        (
            EnterpriseRegistered,
            RegisteredAtInstant,
            'data.registered_on: format changed from "date" to "date-time"',
        ),
        (
            EnterpriseEnrolled,
            EnrolledInModuleNamed,
            "data.module: maximum changed from 5 to (none)",
        ),
        (
            EnterpriseEnrolled,
            EnrolledInModuleNamed,
            'data.module: type changed from "integer" to "string"',
        ),
        (
            EnterpriseRegistered,
            RegisteredWithShortSectors,
            "data.sector: maxLength changed from 500 to 100",
        ),
        (EnterpriseEnrolled, EnrolledOnlyDirect, "data.delivery: const changed"),
        # Wider is incompatible too: consumers still on v1 would refuse "online".
        (EnterpriseEnrolled, EnrolledOnline, "data.delivery: enum changed"),
    ],
    ids=[
        "new required field",
        "new required field in a nested object",
        "new required field in an optional nested object",
        "new required field in list items",
        "optional field made required",
        "format changed",
        "constraint dropped",
        "type changed",
        "length narrowed",
        "enum narrowed",
        "enum widened",
    ],
)
def test_other_changes_are_reported(before: type[Event], after: type[Event], expected: str) -> None:
    found = incompatibilities(committed(before), envelope_schema(after))

    assert any(problem.startswith(expected) for problem in found), found


@pytest.mark.parametrize(
    ("cls", "field"),
    [(cls, field) for cls in CATALOGUE for field in cls.model_fields],
    ids=lambda value: value if isinstance(value, str) else value.event_name,
)
def test_removing_any_field_is_reported(cls: type[Event], field: str) -> None:
    generated = envelope_schema(cls)
    payload = generated["$defs"][cls.__name__]
    del payload["properties"][field]
    payload["required"] = [name for name in payload.get("required", []) if name != field]

    assert f"data.{field}: removed" in " ".join(incompatibilities(committed(cls), generated))


def test_removing_a_nested_field_is_reported() -> None:
    generated = envelope_schema(EnterpriseEnrolled)
    del generated["$defs"]["Money"]["properties"]["currency"]

    assert incompatibilities(committed(EnterpriseEnrolled), generated) == [
        "data.delivery_cost.currency: removed (consumers of the committed schema read it)"
    ]


def test_making_a_required_field_optional_is_reported() -> None:
    generated = envelope_schema(EnterpriseRegistered)
    generated["$defs"]["EnterpriseRegistered"]["required"].remove("sector")

    assert incompatibilities(committed(EnterpriseRegistered), generated) == [
        "data.sector: no longer required (consumers rely on its presence)"
    ]


def test_annotations_may_change() -> None:
    generated = envelope_schema(EnterpriseRegistered)
    generated["title"] = "Enterprise registered"
    generated["$defs"]["Headcount"]["description"] = "Personas por sexo."
    generated["properties"]["id"]["examples"] = ["0161f676-3f00-7d49-940b-358c6cd86da8"]

    assert incompatibilities(committed(EnterpriseRegistered), generated) == []


def test_references_are_compared_by_what_they_name() -> None:
    inlined = envelope_schema(EnterpriseRegistered)
    definitions = inlined.pop("$defs")
    inlined["properties"]["data"] = copy.deepcopy(definitions["EnterpriseRegistered"])
    inlined["properties"]["data"]["properties"]["workforce"] = definitions["Headcount"]

    assert incompatibilities(committed(EnterpriseRegistered), inlined) == []

    inlined["properties"]["data"]["properties"]["workforce"]["properties"]["men"]["minimum"] = 1
    assert incompatibilities(committed(EnterpriseRegistered), inlined) == [
        "data.workforce.men: minimum changed from 0 to 1"
    ]


def test_recursive_definitions_are_compared_once() -> None:
    tree: JsonSchema = {
        "$ref": "#/$defs/Area",
        "$defs": {
            "Area": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "parts": {"type": "array", "items": {"$ref": "#/$defs/Area"}},
                },
                "required": ["name"],
            }
        },
    }
    grown = copy.deepcopy(tree)
    grown["$defs"]["Area"]["properties"]["floor"] = {"type": "integer"}
    shrunk = copy.deepcopy(tree)
    del shrunk["$defs"]["Area"]["properties"]["name"]

    assert incompatibilities(tree, grown) == []
    assert incompatibilities(tree, shrunk) == [
        "name: removed (consumers of the committed schema read it)"
    ]


def test_only_local_references_are_followed() -> None:
    remote = {"properties": {"data": {"$ref": "https://example.org/schema.json"}}}

    with pytest.raises(ValueError, match="local"):
        incompatibilities(remote, remote)
