"""Identifiers: UUIDv7 (RFC 9562), time-ordered so that ids sort by creation.

The ids come from `uuid-utils` (Rust's `uuid` crate, `Uuid::now_v7`): 48 bits of Unix
milliseconds, then a 42-bit counter seeded at random each millisecond and incremented within
it (RFC 9562 §6.2, method 1), then random bits. Ids made by one process therefore sort in the
order they were made, also within a millisecond; events and outbox rows rely on that.
"""

from __future__ import annotations

import uuid_utils


def uuid7() -> str:
    """A new UUIDv7 as a string, greater than every one this process made before."""
    return str(uuid_utils.uuid7())
