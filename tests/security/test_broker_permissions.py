"""The broker's permissions, the same with the deploy config (`deploy/nats/nats.conf` and its
`auth.conf`, as compose runs it) and with the embedded one (`score up`'s data folder): a
service's user publishes its own context's subjects and no other's, a reader reads its
subjects and does nothing else, and no one gets in without a password (ADR 021).

`cli/tests/test_broker_permissions.py` goes through the embedded config in depth; here each
promise is checked against both, as an attacker holding one user's password would try it.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client
from nats.js.api import ConsumerConfig

from score_chassis.jetstream import ensure_stream, inbox_prefix
from score_chassis.tokens import REVOKED_BUCKET
from score_cli import broker_config
from score_cli.broker import OPERATOR, USERS, password_variable, render_auth
from score_cli.credentials import new_reader
from score_cli.nats_server import NatsServer
from score_contracts.subjects import CONTEXTS, STREAMS

pytestmark = [pytest.mark.nats, pytest.mark.timeout(120)]

DEPLOY = Path(__file__).parents[2] / "deploy" / "nats"
REFUSED_WITHIN = 1.0
READER_SUBJECTS = "score.bo.santa_cruz.>"


@dataclass
class Broker:
    """A running nats-server with one of the two configs, and who may connect to it."""

    server: NatsServer
    passwords: dict[str, str]
    reader_url: str

    def url(self, user: str | None = None, password: str | None = None) -> str:
        if user is None:
            return self.server.url
        return broker_config.with_credentials(
            self.server.url, user, password or self.passwords[user]
        )


def _deploy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Broker]:
    """compose's nats: deploy/nats/*.conf as committed (but for where it stores), passwords
    from the environment, and a reader added to auth.conf as docs/operations.md says."""
    config = tmp_path / "deploy-nats"
    shutil.copytree(DEPLOY, config)
    passwords = {user: f"{user}-{tmp_path.name}-pw" for user in USERS}
    for user, password in passwords.items():
        monkeypatch.setenv(password_variable(user), password)
    reader = new_reader([READER_SUBJECTS], name="observatory")
    entry = render_auth([reader.user()], header="").split("  users = [\n", 1)[1]
    entry = entry.rsplit("  ]\n", 1)[0]
    auth = (config / "auth.conf").read_text()
    head, tail = auth.rsplit("  ]\n", 1)
    (config / "auth.conf").write_text(head + entry + "  ]\n" + tail)
    # The container's store path gives way to the test's (its ports do on the command line).
    conf = (config / "nats.conf").read_text()
    (config / "nats.conf").write_text(conf.replace("  store_dir: /data/jetstream\n", ""))
    server = NatsServer(tmp_path / "nats", config_file=config / "nats.conf")
    server.start()
    try:
        url = broker_config.with_credentials(server.url, reader.name, reader.password)
        yield Broker(server, passwords, url)
    finally:
        server.stop()


def _embedded(tmp_path: Path) -> Iterator[Broker]:
    """`score up`'s nats: the data folder's config, and a reader made as `score credentials
    create` makes one."""
    data_dir = tmp_path / "broker"
    broker_config.write_config(data_dir)
    reader = new_reader([READER_SUBJECTS], name="observatory")
    broker_config.add_reader(data_dir, reader)
    broker_config.write_config(data_dir)
    server = NatsServer(data_dir / "nats", config_file=broker_config.config_file(data_dir))
    server.start()
    try:
        url = broker_config.with_credentials(server.url, reader.name, reader.password)
        yield Broker(server, broker_config.passwords(data_dir), url)
    finally:
        server.stop()


@pytest.fixture(params=["deploy", "embedded"])
def broker(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Broker]:
    if request.param == "deploy":
        yield from _deploy(tmp_path, monkeypatch)
    else:
        yield from _embedded(tmp_path)


class Connected:
    """A connection as some user, and the permission violations the server sent it."""

    def __init__(self, client: Client, refusals: list[str]) -> None:
        self.client = client
        self.refusals = refusals
        self.js = client.jetstream(timeout=REFUSED_WITHIN)

    async def refused(self, subject: str) -> bool:
        for _ in range(100):  # the server says so asynchronously
            if any(subject.lower() in refusal.lower() for refusal in self.refusals):
                return True
            await asyncio.sleep(0.02)
        return False


@pytest.fixture
async def connect() -> AsyncIterator[Callable[[str, str], object]]:
    opened: list[Client] = []

    async def connect_as(url: str, user: str) -> Connected:
        refusals: list[str] = []

        async def refused(error: Exception) -> None:
            refusals.append(str(error))

        client = await nats.connect(
            url,
            inbox_prefix=inbox_prefix(user),
            error_cb=refused,
            allow_reconnect=False,
            connect_timeout=2,
        )
        opened.append(client)
        return Connected(client, refusals)

    yield connect_as
    for client in opened:
        if not client.is_closed:
            await client.close()


async def test_no_one_gets_in_without_a_password_or_with_a_wrong_one(broker: Broker) -> None:
    for url in (broker.url(), broker.url("visits", "a-guess"), broker.url("nobody", "x")):
        with pytest.raises(nats.errors.Error) as refused:
            await nats.connect(url, allow_reconnect=False, max_reconnect_attempts=0)
        assert "Authorization Violation" in str(refused.value)


async def test_each_service_publishes_its_own_subjects_only(
    broker: Broker, connect: object
) -> None:
    checked = 0
    for context in CONTEXTS:
        me = await connect(broker.url(context), context)  # type: ignore[operator]
        await ensure_stream(me.js, STREAMS[context])
        ack = await me.js.publish(f"score.bo.santa_cruz.{context}.something_happened.v1", b"{}")
        assert ack.stream == STREAMS[context].name
        for other in CONTEXTS:
            if other == context:
                continue
            forged = f"score.bo.santa_cruz.{other}.something_happened.v1"
            await me.client.publish(forged, b"{}")
            assert await me.refused(forged), (context, other)
            checked += 1
        await me.client.publish(f"$KV.{REVOKED_BUCKET}.a-token", b"revoked")
        assert await me.refused(f"$KV.{REVOKED_BUCKET}.a-token"), context
        with pytest.raises(nats.errors.TimeoutError):
            await me.js.delete_stream(STREAMS[context].name)
    assert checked == len(CONTEXTS) * (len(CONTEXTS) - 1)

    # Nothing forged reached a stream: each holds its own service's one message.
    operator = await connect(broker.url(OPERATOR), OPERATOR)  # type: ignore[operator]
    for context in CONTEXTS:
        info = await operator.js.stream_info(STREAMS[context].name)
        assert info.state.messages == 1, context


async def test_a_reader_reads_its_subjects_and_nothing_else(
    broker: Broker, connect: object
) -> None:
    enrolment = await connect(broker.url("enrolment"), "enrolment")  # type: ignore[operator]
    await ensure_stream(enrolment.js, STREAMS["enrolment"])
    for region in ("santa_cruz", "la_paz"):
        await enrolment.js.publish(f"score.bo.{region}.enrolment.enterprise_registered.v1", b"{}")

    name = "reader-observatory"
    me = await connect(broker.reader_url, name)  # type: ignore[operator]
    mine = ConsumerConfig(name=name, durable_name=name, filter_subject=READER_SUBJECTS)
    await me.js.add_consumer("SCORE_ENROLMENT", mine)
    pull = await me.js.pull_subscribe_bind(name, "SCORE_ENROLMENT")
    [message] = await pull.fetch(10, timeout=2)
    assert message.subject == "score.bo.santa_cruz.enrolment.enterprise_registered.v1"
    await message.ack_sync()

    for config in (
        ConsumerConfig(name=name, durable_name=name, filter_subject="score.bo.la_paz.>"),
        ConsumerConfig(name=name, durable_name=name),
        ConsumerConfig(durable_name="someone-else", filter_subject=READER_SUBJECTS),
    ):
        with pytest.raises(nats.errors.TimeoutError):
            await me.js.add_consumer("SCORE_ENROLMENT", config)
    for subject in ("score.bo.la_paz.>", "_INBOX.>", "_INBOX_enrolment.>"):
        await me.client.subscribe(subject)
        assert await me.refused(subject), subject
    await me.client.publish("score.bo.santa_cruz.enrolment.enterprise_registered.v1", b"{}")
    assert await me.refused("score.bo.santa_cruz.enrolment.enterprise_registered.v1")
    with pytest.raises(nats.errors.TimeoutError):
        await me.js.purge_stream("SCORE_ENROLMENT")
