"""Who may do what on the broker: the NATS users of SCORE Cases and their permissions.

One user per service, which may publish only its own context's subjects and call only the
JetStream API it needs; `operator`, the CLI, which may do anything; and readers made by
`score credentials create`, which may read their own durable consumers filtered to their
subjects and nothing else. The model lives here once and is rendered two ways: with the
passwords written out (the embedded `score up`'s data folder) or as `$NATS_<USER>_PASSWORD`
environment variables (`deploy/nats/auth.conf`, for compose and the cluster's nodes).

Every user has its own inbox prefix, `_INBOX_<user>`, and may subscribe only there: the
answers JetStream sends a reader (the messages its fetches bring) reach that reader alone,
and nobody may listen on another's replies. See ADR 021.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from score_chassis.tokens import REVOKED_BUCKET
from score_contracts.subjects import CONTEXTS, STREAMS

OPERATOR: Final = "operator"
SERVICE_USERS: Final[tuple[str, ...]] = CONTEXTS
USERS: Final[tuple[str, ...]] = (*SERVICE_USERS, OPERATOR)
READER_PREFIX: Final = "reader-"

READS: Final[Mapping[str, tuple[str, ...]]] = {
    "enrolment": (),
    "visits": ("enrolment",),
    "indicators": ("enrolment", "visits"),
    "notifications": ("indicators",),
}
"""Whose streams each service consumes: visits and indicators read enrolment, indicators
reads visits, notifications reads indicators."""

API: Final = "$JS.API"
REVOKED_STREAM: Final = f"KV_{REVOKED_BUCKET}"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_SUBJECT_TOKEN = re.compile(r"^[a-z0-9_-]+$")


def inbox_prefix(user: str) -> str:
    """The only inbox a user may subscribe to; its client must be told to use it."""
    return f"_INBOX_{user}"


def password_variable(user: str) -> str:
    """The environment variable `deploy/nats/auth.conf` takes the user's password from."""
    return f"NATS_{user.upper()}_PASSWORD"


@dataclass(frozen=True)
class Permissions:
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]


def service_permissions(context: str) -> Permissions:
    """A service: its own subjects, its stream's provisioning, consumers on what it reads,
    and the revocation bucket read and watched, never written."""
    own = STREAMS[context].name
    publish = [
        f"score.*.*.{context}.>",
        f"{API}.INFO",
        f"{API}.STREAM.NAMES",  # the relay finds its stream by subject
        f"{API}.STREAM.CREATE.{own}",
        f"{API}.STREAM.UPDATE.{own}",
        f"{API}.STREAM.INFO.{own}",
        f"{API}.STREAM.MSG.GET.{own}",  # the stream check reads the last message
        # The relay reads its own stream's headers through an ephemeral consumer.
        *_consumer_use(own),
    ]
    for source in READS[context]:
        stream = STREAMS[source].name
        publish += [
            # Created if missing (the consumer may start before the producer), never updated.
            f"{API}.STREAM.CREATE.{stream}",
            f"{API}.STREAM.INFO.{stream}",
            f"{API}.CONSUMER.DURABLE.CREATE.{stream}.*",
            *_consumer_use(stream),
        ]
    publish += [
        # The revocation bucket: made if missing (same configuration every time), read and
        # watched through an ordered consumer; `$KV.<bucket>.>` (a put) is not allowed.
        f"{API}.STREAM.CREATE.{REVOKED_STREAM}",
        f"{API}.STREAM.INFO.{REVOKED_STREAM}",
        f"{API}.CONSUMER.CREATE.{REVOKED_STREAM}",  # an ordered consumer has no name
        *_consumer_use(REVOKED_STREAM),
        f"$JS.FC.{REVOKED_STREAM}.>",
    ]
    return Permissions(tuple(publish), (f"{inbox_prefix(context)}.>",))


def _consumer_use(stream: str) -> list[str]:
    """Any consumer of the stream: made, read, deleted, fetched from, acknowledged."""
    consumer = "*"
    return [
        # Named (`<stream>.<name>`) or with its filter (`<stream>.<name>.<filter>`).
        f"{API}.CONSUMER.CREATE.{stream}.>",
        f"{API}.CONSUMER.INFO.{stream}.{consumer}",
        f"{API}.CONSUMER.DELETE.{stream}.{consumer}",
        f"{API}.CONSUMER.MSG.NEXT.{stream}.{consumer}",
        f"$JS.ACK.{stream}.{consumer}.>",
    ]


OPERATOR_PERMISSIONS: Final = Permissions((">",), (">",))
"""The CLI republishes any context, tails every subject, revokes tokens, repairs streams."""


def reader_permissions(name: str, subjects: Sequence[str]) -> Permissions:
    """A reader: one durable consumer per SCORE stream, named after the reader, filtered to
    its subjects; fetch and ack on it; nothing else.

    The filter is held by the subject of the create request itself
    (`$JS.API.CONSUMER.CREATE.<stream>.<name>.<filter>`, which the server checks against the
    consumer's configuration), so a consumer filtered to another region cannot be made.
    """
    publish = [f"{API}.INFO"]
    for spec in STREAMS.values():
        publish.append(f"{API}.STREAM.INFO.{spec.name}")
        publish += [f"{API}.CONSUMER.CREATE.{spec.name}.{name}.{subject}" for subject in subjects]
        publish += [
            f"{API}.CONSUMER.INFO.{spec.name}.{name}",
            f"{API}.CONSUMER.DELETE.{spec.name}.{name}",
            f"{API}.CONSUMER.MSG.NEXT.{spec.name}.{name}",
            f"$JS.ACK.{spec.name}.{name}.>",
        ]
    return Permissions(tuple(publish), (f"{inbox_prefix(name)}.>",))


def reader_name(given: str) -> str:
    """A reader's user name (and consumer name): `reader-<given>`, checked."""
    name = given if given.startswith(READER_PREFIX) else f"{READER_PREFIX}{given}"
    if not _NAME.match(name):
        raise ValueError(f"bad reader name {given!r}: lowercase letters, digits, '-' and '_' only")
    return name


def check_subjects(subjects: Iterable[str]) -> tuple[str, ...]:
    """Reader filters: `score.<country>.<region>.>` and narrower, nothing outside `score.`."""
    checked = []
    for subject in subjects:
        tokens = subject.split(".")
        if (
            len(tokens) < 2
            or tokens[0] != "score"
            or any(t != "*" and not _SUBJECT_TOKEN.match(t) for t in tokens[1:-1])
            or not (tokens[-1] == ">" or tokens[-1] == "*" or _SUBJECT_TOKEN.match(tokens[-1]))
        ):
            raise ValueError(
                f"bad subject filter {subject!r}: like 'score.bo.santa_cruz.>' (a subject of "
                "SCORE's streams, '*' for one token, '>' at the end for the rest)"
            )
        checked.append(subject)
    if not checked:
        raise ValueError("a reader needs at least one subject filter (--subjects)")
    return tuple(checked)


@dataclass(frozen=True)
class User:
    name: str
    password: str
    """The password itself, or `$VARIABLE` for one the server takes from its environment."""
    permissions: Permissions
    comment: str = ""


@dataclass(frozen=True)
class Reader:
    name: str
    password: str
    subjects: tuple[str, ...]
    created_at: str
    expires_at: str | None = None

    def user(self) -> User:
        until = f", until {self.expires_at}" if self.expires_at else ""
        return User(
            self.name,
            self.password,
            reader_permissions(self.name, self.subjects),
            f"reader of {', '.join(self.subjects)}{until}",
        )


def system_users(passwords: Mapping[str, str]) -> list[User]:
    """The services' users and the operator's, with the passwords given (or variables)."""
    users = [
        User(name, passwords[name], service_permissions(name), f"the {name} service")
        for name in SERVICE_USERS
    ]
    users.append(User(OPERATOR, passwords[OPERATOR], OPERATOR_PERMISSIONS, "the operator's CLI"))
    return users


def variable_passwords() -> dict[str, str]:
    return {name: f"${password_variable(name)}" for name in USERS}


def render_auth(users: Iterable[User], *, header: str) -> str:
    """The `authorization` block: every user with its password and permissions.

    No `no_auth_user`: a connection without credentials is refused.
    """
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    lines += ["authorization {", "  users = ["]
    for user in users:
        password = user.password if user.password.startswith("$") else json.dumps(user.password)
        if user.comment:
            lines.append(f"    # {user.comment}")
        lines += [
            "    {",
            f"      user: {json.dumps(user.name)}",
            f"      password: {password}",
            "      permissions: {",
            f"        publish: {{ allow: {_list(user.permissions.publish)} }}",
            f"        subscribe: {{ allow: {_list(user.permissions.subscribe)} }}",
            "      }",
            "    }",
        ]
    lines += ["  ]", "}", ""]
    return "\n".join(lines)


def _list(subjects: Sequence[str]) -> str:
    if len(subjects) == 1:
        return f"[{json.dumps(subjects[0])}]"
    body = "".join(f"\n          {json.dumps(subject)}" for subject in subjects)
    return f"[{body}\n        ]"


DEPLOY_HEADER: Final = """\
The broker's users and permissions (ADR 021), included by nats.conf and by every cluster node.
Generated from score_cli/broker.py: `python -m score_cli.broker > deploy/nats/auth.conf`.
Passwords come from the environment (compose passes them from deploy/.env); readers made for
downstream systems are added below the operator (see docs/operations.md), then
`nats-server --signal reload`."""


def deploy_auth() -> str:
    """`deploy/nats/auth.conf`, passwords as environment variables."""
    return render_auth(system_users(variable_passwords()), header=DEPLOY_HEADER)


if __name__ == "__main__":
    print(deploy_auth(), end="")
