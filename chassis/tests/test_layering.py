"""The chassis is split by purpose: its core (store, commands, relay, consumer, settings,
logging …) knows nothing of HTTP, and nothing of the chassis knows the test helpers."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import score_chassis

PACKAGE = Path(score_chassis.__file__).parent
CORE = sorted(p for p in PACKAGE.glob("*.py"))
EVERY = sorted(PACKAGE.rglob("*.py"))


def imported(module: Path) -> set[str]:
    tree = ast.parse(module.read_text("utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("module", CORE, ids=lambda p: p.name)
def test_the_core_knows_nothing_of_http(module: Path) -> None:
    http = {
        name
        for name in imported(module)
        if name.split(".")[0] in {"fastapi", "starlette", "uvicorn"}
        or name.startswith("score_chassis.http")
    }
    assert not http, f"{module.name} imports {sorted(http)}"


@pytest.mark.parametrize("module", EVERY, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_nothing_of_the_chassis_needs_the_test_helpers(module: Path) -> None:
    testing = {
        name
        for name in imported(module)
        if name.split(".")[0] in {"score_testing", "pytest", "hypothesis"}
    }
    assert not testing, f"{module.name} imports {sorted(testing)}"


def test_no_module_of_the_chassis_changes_its_globals() -> None:
    for module in EVERY:
        tree = ast.parse(module.read_text("utf-8"))
        assert not any(isinstance(node, ast.Global) for node in ast.walk(tree)), module.name
