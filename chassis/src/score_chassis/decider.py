"""The decider pattern: `decide(command, state) -> events`, `evolve(state, event) -> state`.

Both are pure functions; a command handler is load → fold → decide → append.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

Command = TypeVar("Command")
State = TypeVar("State")
E = TypeVar("E")


class Refused(Exception):
    """A rule of the domain refused the command. `rule` is a stable, kebab-case name."""

    def __init__(self, message: str, *, rule: str) -> None:
        super().__init__(message)
        self.message = message
        self.rule = rule


class NotKnownYet(Refused):
    """Refused for want of a fact this service learns from another's events, which may simply
    not have arrived yet: the same command may succeed if retried shortly.

    An absent fact is never proof that the fact does not exist elsewhere, so a refusal that
    rests on one must say so rather than pass for final."""


class Invalid(Exception):
    """The command is malformed in a way only the aggregate's state reveals, e.g. a training
    dated before its enrolment. Answered as invalid input naming the field and the rule."""

    def __init__(self, field: str, reason: str, *, rule: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason
        self.rule = rule


@dataclass(frozen=True)
class Decider(Generic[Command, State, E]):
    decide: Callable[[Command, State], list[E]]
    evolve: Callable[[State, E], State]
    initial_state: State

    def fold(self, events: Iterable[E], state: State | None = None) -> State:
        current = self.initial_state if state is None else state
        for event in events:
            current = self.evolve(current, event)
        return current
