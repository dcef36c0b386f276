"""The committed contract files: writing them, and checking them against the models."""

from __future__ import annotations

import json
from pathlib import Path

from score_contracts.schemas.catalogue import catalogue_page
from score_contracts.schemas.compatibility import incompatibilities
from score_contracts.schemas.generation import (
    CATALOGUE_PAGE,
    INDEX,
    REPOSITORY_SCHEMAS,
    SCHEMAS_DIR,
    generated_schemas,
    index,
    render_json,
)

REGENERATE = "run `make schemas`"
NEW_MAJOR = (
    "keep the committed schema and publish the change as a new major version "
    "(a new event class with `major = 2`, its own type, subject and schema)"
)


class IncompatibleChange(Exception):
    """The models would replace committed schemas with incompatible ones."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def published(
    schemas_dir: Path = SCHEMAS_DIR, page: Path | None = CATALOGUE_PAGE
) -> dict[Path, str]:
    """Every generated file, by the place it is committed, with its text (the catalogue
    page only where there is one: not in an installed wheel)."""
    files = {
        schemas_dir / path: render_json(schema) for path, schema in generated_schemas().items()
    }
    files[schemas_dir / INDEX] = render_json(index())
    if page is not None:
        files[page] = catalogue_page()
    return files


def incompatible_changes(schemas_dir: Path = SCHEMAS_DIR) -> list[str]:
    """Each way in which a model breaks the schema committed for it."""
    return [
        f"{_shown(schemas_dir / path)}: {problem}"
        for path, found in _incompatible_by_path(schemas_dir).items()
        for problem in found
    ]


def _incompatible_by_path(schemas_dir: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path, generated in generated_schemas().items():
        file = schemas_dir / path
        if not file.exists():
            continue  # a new event type: nothing published yet to break
        try:
            committed = json.loads(file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            found[path] = [f"the committed schema is not valid JSON ({error})"]
            continue
        if problems := incompatibilities(committed, generated):
            found[path] = problems
    return found


def stale_files(schemas_dir: Path = SCHEMAS_DIR, page: Path | None = CATALOGUE_PAGE) -> list[str]:
    """Each generated file that is missing or differs from what the models give now."""
    found: list[str] = []
    for file, text in published(schemas_dir, page).items():
        if not file.exists():
            found.append(f"{_shown(file)}: missing; {REGENERATE}")
        elif file.read_text(encoding="utf-8") != text:
            found.append(f"{_shown(file)}: out of date with the models; {REGENERATE}")
    return found


def orphaned_schemas(schemas_dir: Path = SCHEMAS_DIR) -> list[str]:
    """Each committed event schema that no model in the catalogue publishes any more."""
    generated = generated_schemas()
    return [
        f"{_shown(file)}: no event in the catalogue has this schema; restore the model, "
        "or delete the file once the type's deprecation period is over"
        for file in sorted(schemas_dir.glob("*/*.json"))
        if file.relative_to(schemas_dir).as_posix() not in generated
    ]


def problems(schemas_dir: Path = SCHEMAS_DIR, page: Path | None = CATALOGUE_PAGE) -> list[str]:
    """Everything `check` reports: incompatible, then stale, then orphaned files."""
    breaking = _incompatible_by_path(schemas_dir)
    # A file with an incompatible change is not merely stale: regenerating it is the mistake.
    broken = tuple(_shown(schemas_dir / path) for path in breaking)
    return [
        *(f"{problem} — {NEW_MAJOR}" for problem in incompatible_changes(schemas_dir)),
        *(problem for problem in stale_files(schemas_dir, page) if not problem.startswith(broken)),
        *orphaned_schemas(schemas_dir),
    ]


def write(
    schemas_dir: Path = SCHEMAS_DIR,
    page: Path | None = CATALOGUE_PAGE,
    *,
    allow_incompatible: bool = False,
) -> list[Path]:
    """Regenerate the committed files; return those that changed.

    Refuses (`IncompatibleChange`) to overwrite a committed schema with an incompatible one,
    since that would silently re-publish the contract under the same version.
    """
    if not allow_incompatible and (breaking := incompatible_changes(schemas_dir)):
        raise IncompatibleChange([f"{problem} — {NEW_MAJOR}" for problem in breaking])
    changed: list[Path] = []
    for file, text in published(schemas_dir, page).items():
        if not file.exists() or file.read_text(encoding="utf-8") != text:
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_text(text, encoding="utf-8")
            changed.append(file)
    return changed


def _shown(file: Path) -> str:
    """`file` relative to the repository when it is inside it, for short messages."""
    root = REPOSITORY_SCHEMAS.parents[1]
    return file.relative_to(root).as_posix() if file.is_relative_to(root) else str(file)
