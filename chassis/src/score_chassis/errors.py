"""How a command or a read fails other than by a rule's refusal (those are `decider`'s):
an aggregate unknown, a version no longer current, a view being rebuilt. The HTTP layer
answers each as its problem (404, 412, 503)."""

from __future__ import annotations


class NotFound(Exception):
    def __init__(self, what: str, id_: str) -> None:
        super().__init__(f"no {what} with id {id_}")
        self.what = what
        self.id = id_


class VersionMismatch(Exception):
    """`If-Match` named a version the aggregate is no longer (or not yet) at."""

    def __init__(self, expected: int, actual: int | None) -> None:
        if expected == BEYOND_ANY_VERSION:
            detail = "If-Match names a version no resource is at"
        elif actual is None:
            detail = f"the resource is no longer at version {expected}"
        else:
            detail = f"the resource is at version {actual}, not {expected}"
        super().__init__(detail)


BEYOND_ANY_VERSION = -1
"""The version an If-Match names when its number is larger than any version can be: it
matches none, and is answered after a 404, like any other."""


class Rebuilding(Exception):
    """The view an answer would come from is being rebuilt from its streams: until it has caught
    up it holds only part of the history, and answering from it would understate the truth.
    The message says which view and how far it is."""
