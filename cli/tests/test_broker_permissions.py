"""The broker lets no one in without credentials, and each user do only its part (ADR 021).

Against the real nats-server with the real users and permissions (`authenticated_nats`,
written by the code `score up` writes its data folder's config with).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client
from nats.js.api import ConsumerConfig, KeyValueConfig
from nats.js.errors import NotFoundError

from score_chassis.database import Database
from score_chassis.jetstream import NatsConnection, ensure_stream, inbox_prefix
from score_chassis.migrate import migrate
from score_chassis.tokens import REVOKED_BUCKET, Revocations, revoke
from score_cli.broker import USERS, deploy_auth, password_variable
from score_cli.broker_config import write_config
from score_cli.main import main
from score_cli.nats_server import nats_server_binary
from score_contracts.subjects import CONTEXTS, STREAMS
from score_testing.nats import AuthenticatedNats

pytestmark = [pytest.mark.nats, pytest.mark.timeout(60)]

DEPLOY = Path(__file__).parents[2] / "deploy" / "nats"
REFUSED_WITHIN = 1.0
"""A refused JetStream request goes unanswered: the client gives up after this."""


class Connected:
    """A client connection as some user, and the refusals the server sent it."""

    def __init__(self, client: Client, refusals: list[str]) -> None:
        self.client = client
        self.refusals = refusals
        self.js = client.jetstream(timeout=REFUSED_WITHIN)

    async def refused(self, subject: str) -> bool:
        """Whether the server said no to this subject (it says so asynchronously)."""
        for _ in range(50):
            if any(subject.lower() in refusal.lower() for refusal in self.refusals):
                return True
            await asyncio.sleep(0.02)
        return False


@pytest.fixture
async def connect() -> AsyncIterator[object]:
    opened: list[Client] = []

    async def connect_as(url: str, user: str | None = None) -> Connected:
        refusals: list[str] = []

        async def refused(error: Exception) -> None:
            refusals.append(str(error))

        client = await nats.connect(
            url,
            inbox_prefix=inbox_prefix(user) if user else "_INBOX",
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


async def _refused_at_connect(url: str) -> str:
    """What the server says to a client it refuses (asked again while it resets the connection
    instead, as it may while it reloads its users)."""
    for _ in range(50):
        try:
            client = await nats.connect(
                url, allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=2
            )
        except nats.errors.Error as refused:
            return str(refused)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        await client.close()
        raise AssertionError(f"let in at {url}")
    raise AssertionError(f"never answered at {url}")


# The configuration files.


def test_the_deploy_auth_block_is_the_model_and_nats_server_accepts_the_config() -> None:
    assert (DEPLOY / "auth.conf").read_text() == deploy_auth()
    environment = {**os.environ, **{password_variable(user): "s3cret-" + user for user in USERS}}
    command = [str(nats_server_binary()), "-t", "-c", str(DEPLOY / "nats.conf")]
    checked = subprocess.run(command, env=environment, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr + checked.stdout
    # A password left out is an error, not an open door.
    del environment[password_variable("visits")]
    unset = subprocess.run(command, env=environment, capture_output=True, text=True)
    assert unset.returncode != 0
    assert "NATS_VISITS_PASSWORD" in unset.stderr + unset.stdout


def test_the_embedded_config_is_readable_by_its_owner_only(
    authenticated_nats: AuthenticatedNats,
) -> None:
    data = authenticated_nats.data_dir
    for path in (
        data / "broker-users.json",
        data / "nats" / "auth.conf",
        data / "nats" / "nats.conf",
    ):
        assert path.stat().st_mode & 0o777 == 0o600, path
    before = authenticated_nats.passwords
    write_config(data)  # the next `score up`
    assert authenticated_nats.passwords == before


# Who may connect.


async def test_an_anonymous_client_or_a_wrong_password_is_refused_at_connect(
    authenticated_nats: AuthenticatedNats,
) -> None:
    assert "Authorization Violation" in await _refused_at_connect(authenticated_nats.url())
    wrong = authenticated_nats.url().replace("nats://", "nats://visits:guess@")
    assert "Authorization Violation" in await _refused_at_connect(wrong)


# The services.


@pytest.mark.parametrize("context", CONTEXTS)
async def test_a_service_publishes_its_own_subjects_and_is_refused_another_contexts(
    authenticated_nats: AuthenticatedNats, connect: object, context: str
) -> None:
    me = await connect(authenticated_nats.url(context), context)  # type: ignore[operator]
    await ensure_stream(me.js, STREAMS[context])  # the provisioning a producer does
    ack = await me.js.publish(f"score.bo.santa_cruz.{context}.something_happened.v1", b"{}")
    assert ack.stream == STREAMS[context].name

    other = "visits" if context != "visits" else "enrolment"
    forged = f"score.bo.santa_cruz.{other}.something_happened.v1"
    await me.client.publish(forged, b"{}")
    assert await me.refused(forged)
    with pytest.raises(nats.errors.TimeoutError):
        await me.js.delete_stream(STREAMS[context].name)


async def test_a_consumer_may_create_a_stream_it_reads_but_not_change_it(
    authenticated_nats: AuthenticatedNats, connect: object
) -> None:
    visits = await connect(authenticated_nats.url("visits"), "visits")  # type: ignore[operator]
    await ensure_stream(visits.js, STREAMS["enrolment"], update_existing=False)
    config = (await visits.js.stream_info("SCORE_ENROLMENT")).config
    config.max_msgs = 10
    with pytest.raises(nats.errors.TimeoutError):
        await visits.js.update_stream(config)
    with pytest.raises(nats.errors.TimeoutError):
        await visits.js.purge_stream("SCORE_ENROLMENT")


async def test_services_watch_revocations_the_operator_alone_writes(
    authenticated_nats: AuthenticatedNats, tmp_path: Path
) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'visits.db'}")
    await migrate(database, [])
    password = authenticated_nats.passwords["visits"]
    service = NatsConnection(
        authenticated_nats.url(), name="visits", user="visits", password=password
    )
    operator = NatsConnection(authenticated_nats.url("operator"), name="score-cli")
    revocations = Revocations(service, database)
    service.start()
    operator.start()
    try:
        await asyncio.wait_for(service.ready.wait(), 5)
        await asyncio.wait_for(operator.ready.wait(), 5)
        await revocations.start()  # the service makes the bucket and watches it
        await revoke(operator, "token-1")
        for _ in range(100):
            if "token-1" in revocations:
                break
            await asyncio.sleep(0.05)
        assert "token-1" in revocations
        kv = await service.client.jetstream(timeout=REFUSED_WITHIN).key_value(REVOKED_BUCKET)
        with pytest.raises(nats.errors.TimeoutError):
            await kv.put("token-2", b"revoked by a service")
        with pytest.raises(nats.errors.TimeoutError):
            await kv.delete("token-1")
    finally:
        await revocations.stop()
        await service.close()
        await operator.close()
        await database.dispose()


# Readers.


async def _two_regions(authenticated_nats: AuthenticatedNats, connect: object) -> None:
    enrolment = await connect(authenticated_nats.url("enrolment"), "enrolment")  # type: ignore[operator]
    await ensure_stream(enrolment.js, STREAMS["enrolment"])
    for region in ("santa_cruz", "la_paz", "santa_cruz"):
        await enrolment.js.publish(f"score.bo.{region}.enrolment.enterprise_registered.v1", b"{}")


async def test_a_reader_reads_its_region_through_its_own_durable_and_nothing_else(
    authenticated_nats: AuthenticatedNats, connect: object
) -> None:
    await _two_regions(authenticated_nats, connect)
    reader, url = authenticated_nats.add_reader("score.bo.santa_cruz.>", name="observatory")
    assert reader.name == "reader-observatory"
    me = await connect(url, reader.name)  # type: ignore[operator]
    mine = ConsumerConfig(
        name=reader.name, durable_name=reader.name, filter_subject="score.bo.santa_cruz.>"
    )
    await me.js.add_consumer("SCORE_ENROLMENT", mine)
    pull = await me.js.pull_subscribe_bind(reader.name, "SCORE_ENROLMENT")
    messages = await pull.fetch(10, timeout=2)
    assert [m.subject.split(".")[2] for m in messages] == ["santa_cruz", "santa_cruz"]
    for message in messages:
        await message.ack_sync()
    assert (await me.js.consumer_info("SCORE_ENROLMENT", reader.name)).num_ack_pending == 0

    # Another region, every region, or a consumer under someone else's name: refused.
    for config in (
        ConsumerConfig(
            name=reader.name, durable_name=reader.name, filter_subject="score.bo.la_paz.>"
        ),
        ConsumerConfig(name=reader.name, durable_name=reader.name),
        ConsumerConfig(
            name="indicators-projection-enrolment", filter_subject="score.bo.santa_cruz.>"
        ),
        ConsumerConfig(durable_name="elsewhere", filter_subject="score.bo.santa_cruz.>"),
    ):
        with pytest.raises(nats.errors.TimeoutError):
            await me.js.add_consumer("SCORE_ENROLMENT", config)
    await me.client.subscribe("score.bo.la_paz.>")
    assert await me.refused("score.bo.la_paz.>")
    await me.client.subscribe("_INBOX.>")  # others' replies are not its to read
    assert await me.refused("_INBOX.>"), me.refusals

    # No publishing, no stream deleted or purged, no revocation written.
    await me.client.publish("score.bo.santa_cruz.enrolment.enterprise_registered.v1", b"{}")
    assert await me.refused("score.bo.santa_cruz.enrolment.enterprise_registered.v1")
    for refused_call in (
        me.js.delete_stream("SCORE_ENROLMENT"),
        me.js.purge_stream("SCORE_ENROLMENT"),
        me.js.create_key_value(KeyValueConfig(bucket=REVOKED_BUCKET)),
    ):
        with pytest.raises(nats.errors.TimeoutError):
            await refused_call
    await me.client.publish(f"$KV.{REVOKED_BUCKET}.some-token", b"revoked")
    assert await me.refused(f"$KV.{REVOKED_BUCKET}.some-token")

    # Its own durable it may delete.
    assert await me.js.delete_consumer("SCORE_ENROLMENT", reader.name)
    operator = await connect(authenticated_nats.url("operator"), "operator")  # type: ignore[operator]
    with pytest.raises(NotFoundError):
        await operator.js.consumer_info("SCORE_ENROLMENT", reader.name)


async def test_an_expired_reader_is_cut_off_and_refused(
    authenticated_nats: AuthenticatedNats, connect: object
) -> None:
    # Long enough that a slow machine still connects and looks before it expires.
    reader, url = authenticated_nats.add_reader("score.bo.>", ttl=dt.timedelta(seconds=4))
    connected = await connect(url, reader.name)  # type: ignore[operator]
    assert authenticated_nats.rewrite_and_reload() == []  # not yet
    assert reader.expires_at is not None
    left = (dt.datetime.fromisoformat(reader.expires_at) - dt.datetime.now(dt.UTC)).total_seconds()
    await asyncio.sleep(max(0.0, left) + 0.1)
    assert authenticated_nats.rewrite_and_reload() == [reader.name]  # `score up`'s housekeeping
    for _ in range(100):
        if not connected.client.is_connected:
            break
        await asyncio.sleep(0.02)
    assert not connected.client.is_connected
    assert "Authorization Violation" in await _refused_at_connect(url)


# The command.


async def test_score_credentials_creates_lists_and_revokes_a_reader(
    authenticated_nats: AuthenticatedNats, capsys: pytest.CaptureFixture[str]
) -> None:
    data = str(authenticated_nats.data_dir)
    base = ["credentials", "create", "--subjects", "score.bo.santa_cruz.>", "--ttl", "90d"]
    arguments = [*base, "--name", "cruz", "--json", "--nats-url", authenticated_nats.url()]
    assert main([*arguments, "--data-dir", data]) == 0
    created = json.loads(capsys.readouterr().out)
    assert created["name"] == created["consumer_name"] == "reader-cruz"
    assert created["inbox_prefix"] == "_INBOX_reader-cruz"
    client = await _eventually_connected(created["url"])
    await client.close()

    assert main(["credentials", "list", "--json", "--data-dir", data]) == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert listed["subjects"] == ["score.bo.santa_cruz.>"] and listed["state"] == "active"
    assert "password" not in listed

    assert main(["credentials", "revoke", "cruz", "--data-dir", data]) == 0
    for _ in range(100):  # the server reloads on its own time
        try:
            client = await nats.connect(created["url"], allow_reconnect=False, connect_timeout=1)
        except (nats.errors.Error, OSError):  # refused, or reset while the server reloads
            break
        await client.close()
        await asyncio.sleep(0.05)
    assert "Authorization Violation" in await _refused_at_connect(created["url"])

    assert main([*base[:2], "--subjects", "elsewhere.>", "--data-dir", data]) == 2
    assert "bad subject filter 'elsewhere.>'" in capsys.readouterr().err


async def _eventually_connected(url: str) -> Client:
    for _ in range(100):
        try:
            return await nats.connect(url, allow_reconnect=False, connect_timeout=1)
        except (nats.errors.Error, OSError):  # refused, or reset while the server reloads
            await asyncio.sleep(0.05)
    raise AssertionError(f"never let in at {url}")
