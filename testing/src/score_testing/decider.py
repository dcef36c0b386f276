"""Given / when / then for deciders: a test reads like the rule it checks.

given(registered, withdrawn).when(Enrol(...)).refuses("no-enrolment-after-withdrawal")
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import pytest

from score_chassis.decider import Decider, Invalid, Refused

Command = TypeVar("Command")
State = TypeVar("State")
E = TypeVar("E")


@dataclass(frozen=True)
class When(Generic[Command, State, E]):
    decider: Decider[Command, State, E]
    history: tuple[E, ...]
    command: Command

    def decide(self) -> list[E]:
        return self.decider.decide(self.command, self.decider.fold(self.history))

    def then(self, *expected: E) -> None:
        assert self.decide() == list(expected)

    def then_one(self, check: Callable[[E], Any] | None = None) -> E:
        """Exactly one event is decided; returns it (and passes it to `check`)."""
        decided = self.decide()
        assert len(decided) == 1, decided
        if check is not None:
            check(decided[0])
        return decided[0]

    def refuses(self, rule: str) -> Refused:
        with pytest.raises(Refused) as refused:
            self.decide()
        assert refused.value.rule == rule
        return refused.value

    def invalid(self, field: str) -> Invalid:
        with pytest.raises(Invalid) as invalid:
            self.decide()
        assert invalid.value.field == field
        return invalid.value


@dataclass(frozen=True)
class Given(Generic[Command, State, E]):
    decider: Decider[Command, State, E]
    history: tuple[E, ...]

    def when(self, command: Command) -> When[Command, State, E]:
        return When(self.decider, self.history, command)


def scenario(decider: Decider[Command, State, E]) -> Callable[..., Given[Command, State, E]]:
    """`given = scenario(enterprise)`, then `given(event, …).when(command).then(…)`."""

    def given(*history: E) -> Given[Command, State, E]:
        return Given(decider, history)

    return given


def rules_named(*modules: Path) -> set[str]:
    """Every rule the deciders in `modules` can name (`rule="…"`), for tests that must cover
    each one."""
    text = "".join(module.read_text("utf-8") for module in modules)
    return set(re.findall(r'rule="([a-z0-9-]+)"', text))
