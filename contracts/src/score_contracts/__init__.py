"""SCORE's published event contracts: the event models, their CloudEvents envelope, the
JSON Schemas (`score_contracts.schemas`), and `parse`, which a consumer calls on each message.
"""

from score_contracts.envelope import Envelope, InvalidEvent, UnknownEventType, parse

__all__ = ["Envelope", "InvalidEvent", "UnknownEventType", "parse"]
