"""The AsyncAPI 3.0 document of a service, assembled from the contracts (docs/adr/024).

What the service publishes (a channel per event type of its context, on the event's
subject) and what its durable consumers receive (a channel per consumer, on the subject it
filters), with the NATS server the service is configured with. Each message's payload is the
committed JSON Schema of the event's envelope, by `$ref`: the document points at the one
description of the event rather than repeating it, so that the two cannot say different
things. Delivery itself runs on nats-py (docs/adr/003); the channels are built from the same
event models and `Subscription`s the service runs with.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from score_chassis.consumer import Subscription
from score_contracts.envelope import CONTENT_TYPE
from score_contracts.events import CATALOGUE, Event
from score_contracts.subjects import STREAMS

ASYNCAPI_VERSION = "3.0.0"
NATS_PROTOCOL_VERSION = "1"
"""The version of the NATS client protocol: the `proto` nats-server announces in its INFO,
and the `protocol` nats-py sends in its CONNECT. (The server's own version is another thing.)"""
NATS_BINDINGS: dict[str, Any] = {"nats": {"bindingVersion": "0.1.0"}}
"""The NATS operation binding, version 0.1.0, whose one field, `queue`, names a core NATS
queue group: no SCORE consumer is one (they are JetStream durable pull consumers), so it is
left out."""
JSON_SCHEMA_FORMAT = "application/schema+json;version=draft-07"
"""The payloads' schema format: AsyncAPI 3.0 names JSON Schema by draft-07 alone. The committed
schemas (draft 2020-12) use only keywords the two drafts share, with the same meaning
(`cli/tests/test_asyncapi.py` holds them to it), so a draft-07 reader validates alike."""
DEFAULT_NATS_PORT = 4222

CORRELATION_ID = {
    "description": "The chain of events and requests the event belongs to (ADR 023): "
    "the X-Correlation-ID of the request that began it, carried in the envelope.",
    "location": "$message.payload#/correlationid",
}
HEADERS = {
    "type": "object",
    "properties": {
        "Nats-Msg-Id": {
            "type": "string",
            "description": "The event's id: JetStream keeps one copy of an event published "
            "twice within its duplicate window.",
        },
        "Content-Type": {"type": "string", "const": CONTENT_TYPE},
    },
    "required": ["Nats-Msg-Id", "Content-Type"],
}
SUBJECT_PARAMETERS = {
    "country": {"description": "The country's ISO 3166-1 alpha-2 code", "examples": ["bo"]},
    "region": {
        "description": "The region the event belongs to, or `national` for an event of none",
        "examples": ["santa_cruz", "national"],
    },
}


def nats_server(url: str) -> dict[str, Any]:
    """The server object of the NATS at `url`, without the user and password it may carry."""
    parts = urlsplit(url if "://" in url else f"nats://{url}")
    host = parts.hostname or "localhost"
    host = f"[{host}]" if ":" in host else host
    return {
        "host": f"{host}:{parts.port or DEFAULT_NATS_PORT}",
        "protocol": "nats",
        "protocolVersion": NATS_PROTOCOL_VERSION,
        "description": "NATS with JetStream. Clients need credentials (ADR 021).",
    }


DOCUMENTED_SERVER: dict[str, Any] = {
    "host": "{host}:{port}",
    "protocol": "nats",
    "protocolVersion": NATS_PROTOCOL_VERSION,
    "description": "NATS with JetStream, at the address the deployment gives (a service "
    "serves its own document, at `/asyncapi`, with the address it is configured with: "
    "SCORE_PUBLIC_NATS_URL, else SCORE_NATS_URL). Clients need credentials (ADR 021).",
    "variables": {
        "host": {"default": "127.0.0.1", "description": "The NATS host (`score up`'s here)"},
        "port": {"default": str(DEFAULT_NATS_PORT), "description": "Its client port"},
    },
}
"""The server of the committed documents, which no one deployment's address would fit."""


def asyncapi_document(
    *,
    title: str,
    context: str,
    subscriptions: Sequence[Subscription],
    server: dict[str, Any],
    schemas: str,
    version: str = "1",
) -> dict[str, Any]:
    """What the service of `context` publishes, and what its `subscriptions` receive, on
    `server` (`nats_server(url)`, or `DOCUMENTED_SERVER`). Payloads refer to the envelope
    schemas under `schemas`: a URL where they are served, or a path to `contracts/schemas/`.
    """
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    stream = STREAMS[context]
    for cls in _events_of(context):
        name = cls.event_type()
        messages[name] = _message(cls, schemas)
        channels[name] = {
            "address": f"score.{{country}}.{{region}}.{cls.context}.{cls.event_name}.v{cls.major}",
            "title": name,
            "description": "\n\n".join(_paragraphs(cls)),
            "parameters": SUBJECT_PARAMETERS,
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
        }
        operations[name] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{name}"},
            "title": f"Publish {cls.event_name}",
            "summary": f"Published on stream {stream.name} from the service's outbox, once "
            "the event is recorded; a copy published again carries the same Nats-Msg-Id.",
            "messages": [{"$ref": f"#/channels/{name}/messages/{name}"}],
            "bindings": NATS_BINDINGS,
        }
    for subscription in subscriptions:
        filters = subscription.filter_subjects or subscription.stream.subjects
        for n, subject in enumerate(filters):
            name = subscription.durable if len(filters) == 1 else f"{subscription.durable}-{n}"
            received = [
                cls for cls in _events_of(subscription.stream.context) if _matches(subject, cls)
            ]
            for cls in received:
                messages.setdefault(cls.event_type(), _message(cls, schemas))
            channels[name] = {
                "address": subject,
                "title": name,
                "description": f"What the durable consumer {subscription.durable} receives: "
                f"the events of stream {subscription.stream.name} on {subject}.",
                "messages": {
                    cls.event_type(): {"$ref": f"#/components/messages/{cls.event_type()}"}
                    for cls in received
                },
            }
            operations[name] = {
                "action": "receive",
                "channel": {"$ref": f"#/channels/{name}"},
                "title": f"Consume as {subscription.durable}",
                "summary": f"JetStream durable pull consumer {subscription.durable} of "
                f"{subscription.stream.name}, acknowledging each event once its effect is "
                "committed; a redelivered event changes nothing (handled idempotently).",
                "messages": [
                    {"$ref": f"#/channels/{name}/messages/{cls.event_type()}"} for cls in received
                ],
                "bindings": NATS_BINDINGS,
            }
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": title,
            "version": version,
            "description": f"The events the {context} service publishes and consumes, as "
            "CloudEvents 1.0 envelopes in structured JSON mode on NATS JetStream. Field by "
            "field: docs/events.md; how to consume them: docs/consumers.md.",
        },
        "defaultContentType": CONTENT_TYPE,
        "servers": {"nats": server},
        "channels": channels,
        "operations": operations,
        "components": {"messages": dict(sorted(messages.items()))},
    }


def _events_of(context: str) -> list[type[Event]]:
    return [cls for cls in CATALOGUE if cls.context == context]


def _message(cls: type[Event], schemas: str) -> dict[str, Any]:
    return {
        "name": cls.event_type(),
        "title": f"{cls.event_name} (v{cls.major})",
        "summary": _paragraphs(cls)[0],
        "contentType": CONTENT_TYPE,
        "correlationId": CORRELATION_ID,
        "headers": HEADERS,
        "payload": {
            "schemaFormat": JSON_SCHEMA_FORMAT,
            "schema": {"$ref": f"{schemas.rstrip('/')}/{cls.schema_path()}"},
        },
    }


def _paragraphs(cls: type[Event]) -> list[str]:
    """The event's docstring, a paragraph a line; a sentence of its name if it has none."""
    own = cls.__dict__.get("__doc__") or ""
    paragraphs = [" ".join(p.split()) for p in own.strip().split("\n\n") if p.strip()]
    return paragraphs or [f"The {cls.event_name} event, version {cls.major}."]


def _matches(subject: str, cls: type[Event]) -> bool:
    """Whether a consumer filtering `subject` receives some events of `cls`, whose subjects
    are `score.<any country>.<any region>.<context>.<event_name>.v<major>`."""
    tokens = ["score", "*", "*", cls.context, cls.event_name, f"v{cls.major}"]
    wanted = subject.split(".")
    for n, token in enumerate(wanted):
        if token == ">":
            return n < len(tokens)
        if n == len(tokens) or "*" not in (token, tokens[n]) and token != tokens[n]:
            return False
    return len(wanted) == len(tokens)
