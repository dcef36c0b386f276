"""Identifiers: UUIDv7 (RFC 9562), time-ordered so that ids sort by creation."""

from __future__ import annotations

import os
import time
import uuid


def uuid7() -> str:
    """A new UUIDv7 as a string: 48 bits of Unix milliseconds, then random bits."""
    millis = time.time_ns() // 1_000_000
    value = (millis & 0xFFFF_FFFF_FFFF) << 80
    value |= int.from_bytes(os.urandom(10), "big") & ((1 << 80) - 1)
    value &= ~(0xF << 76)
    value |= 0x7 << 76  # version 7
    value &= ~(0x3 << 62)
    value |= 0x2 << 62  # RFC 4122 variant
    return str(uuid.UUID(int=value))
