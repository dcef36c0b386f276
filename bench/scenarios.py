"""The scenarios B1–B8, each run next to its baseline in the same run, as table rows.

They run in four groups, each on what it needs and nothing left from another:

- `on_sqlite`: `score up` on SQLite and the peer on a SQLite file. B8 (memory idle), B1
  (registrations, side by side with the peer), B8 (memory under B1), B3 (trainings).
- `on_postgres`: the enrolment service and the peer each on a fresh PostgreSQL database (B2).
- `in_the_pipeline`: the outbox relay and the projection's consumer, in this process (B4, B5).
- `after_the_command`: a fresh `score up` with enrolment, indicators and notifications only:
  freshness (B7), of the indicators and of the milestones' webhooks, then `score replay` over
  a long history (B6).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench import freshness, pipeline, postgres, replay
from bench.load import Load, LoadPlan, Target, measure
from bench.measure import RssSampler, rss_mb
from bench.report import Row
from bench.systems import Ours, Peer
from score_cli.nats_server import LOOPBACK

Say = Callable[[str], None]


@dataclass(frozen=True)
class Profile:
    """How big a run is: `FULL` for `make bench`, `QUICK` for `make bench-quick` and CI."""

    name: str
    plan: LoadPlan
    connections: tuple[int, ...]
    training_enterprises: int
    """B3: the enterprises the trainings are spread over."""
    pipeline_events: int
    """B4 and B5."""
    replay_events: int | None
    """B6; None: as many as B5's rate gets through in `replay_budget_seconds`, in steps of
    50,000, at least one step and at most `replay_max_events`."""
    replay_budget_seconds: float
    replay_max_events: int
    freshness_rate: float
    freshness_seconds: float
    idle_seconds: float
    """B8: how long the services are left alone before their idle memory is read."""


FULL = Profile(
    name="full",
    plan=LoadPlan(warmup_seconds=3, runs=3, seconds=5),
    connections=(8, 32),
    training_enterprises=200,
    pipeline_events=100_000,
    replay_events=None,
    replay_budget_seconds=60.0,
    replay_max_events=1_000_000,
    freshness_rate=200.0,
    freshness_seconds=10.0,
    idle_seconds=3.0,
)
QUICK = Profile(
    name="quick",
    plan=LoadPlan(warmup_seconds=0, runs=1, seconds=1),
    connections=(8,),
    training_enterprises=20,
    pipeline_events=1_000,
    replay_events=1_500,
    replay_budget_seconds=10.0,
    replay_max_events=1_500,
    freshness_rate=50.0,
    freshness_seconds=2.0,
    idle_seconds=0.5,
)

P99_LIMIT_MS = 25.0
"""B1: the most p99 latency at 8 connections."""
PEER = "peer"
OURS = "SCORE Cases"


def registrations(url: str, token: str | None) -> Target:
    return Target(url, "registrations.lua", lambda label: [label, token or ""])


# B1, B3, B8.


def on_sqlite(profile: Profile, workdir: Path, say: Say) -> list[Row]:
    rows: list[Row] = []
    with Ours(workdir / "score") as ours:
        say(f"score up on SQLite is ready ({', '.join(ours.pids)})")
        time.sleep(profile.idle_seconds)
        idle = {name: rss_mb(pid) for name, pid in ours.pids.items()}
        with Peer(workdir / "peer") as peer, RssSampler({**ours.pids, PEER: peer.pid}) as sampler:
            targets = {
                OURS: registrations(ours.url("enrolment"), ours.token),
                PEER: registrations(peer.url, None),
            }
            loads = {
                c: measure(targets, connections=c, plan=profile.plan, said=say)
                for c in profile.connections
            }
        rows += _compared("B1", "SQLite", loads, with_latency=True)
        peaks = dict(sampler.peaks)
        peer_peak = peaks.pop(PEER, None)
        rows += _memory(idle, peaks, peer_peak)
        rows += _trainings(profile, ours, {c: load[OURS] for c, load in loads.items()}, say)
    return rows


def _compared(
    scenario: str, backend: str, loads: dict[int, dict[str, Load]], *, with_latency: bool
) -> list[Row]:
    rows: list[Row] = []
    for connections, pair in loads.items():
        ours, peer = pair[OURS], pair[PEER]
        rows.append(
            Row(
                scenario,
                f"registrations, {backend}, {connections} connections",
                "req/s",
                ours=ours.rate.median,
                baseline=peer.rate.median,
                ratio_target=1.5,
                details={"ours": ours.as_json(), "peer": peer.as_json()},
            )
        )
        if with_latency and connections == 8:
            rows.append(
                Row(
                    scenario,
                    f"p99 latency, {backend}, 8 connections",
                    "ms",
                    ours=ours.p99_ms.median,
                    baseline=peer.p99_ms.median,
                    limit=P99_LIMIT_MS,
                )
            )
    if with_latency:
        rows.append(
            Row(
                scenario,
                f"failed requests, {backend}, "
                + " and ".join(str(c) for c in loads)
                + " connections",
                "",
                ours=sum(pair[OURS].failed for pair in loads.values()),
                baseline=sum(pair[PEER].failed for pair in loads.values()),
                limit=0,
                target_text="0",
            )
        )
    return rows


def _memory(
    idle: dict[str, float], under_load: dict[str, float], peer_peak: float | None
) -> list[Row]:
    rows = [Row("B8", f"RSS idle, {name}", "MB", ours=mb, limit=120.0) for name, mb in idle.items()]
    rows += [
        Row(
            "B8",
            f"RSS under B1, {name} (peak)",
            "MB",
            ours=mb,
            limit=200.0,
            details={"peer_peak_mb": None if peer_peak is None else round(peer_peak, 1)},
        )
        for name, mb in under_load.items()
    ]
    return rows


def _trainings(profile: Profile, ours: Ours, b1: dict[int, Load], say: Say) -> list[Row]:
    """B3: trainings spread over a few enterprises, several connections on each at once."""
    enterprises = profile.training_enterprises
    enrolment, indicators = ours.url("enrolment"), ours.url("indicators")
    targets = asyncio.run(_enrolled(enrolment, ours.token, enterprises))
    targets_file = ours.data_dir / "b3-targets.txt"
    targets_file.write_text("".join(f"{e} {m}\n" for e, m in targets))
    participants_before = asyncio.run(_participants(indicators, ours.token))
    target = Target(
        enrolment, "trainings.lua", lambda label: [label, ours.token, str(targets_file)]
    )
    loads = {
        c: measure({OURS: target}, connections=c, plan=profile.plan, said=say)[OURS]
        for c in profile.connections
    }
    answered = sum(load.ok for load in loads.values())
    sent = sum(load.sent for load in loads.values())
    in_store = asyncio.run(_settled_trainings(enrolment, ours.token, [e for e, _ in targets]))
    in_indicators = asyncio.run(
        _participants(
            indicators, ours.token, until=participants_before + freshness.PARTICIPANTS * in_store
        )
    )
    counted = (in_indicators - participants_before) // freshness.PARTICIPANTS
    say(
        f"B3: {sent} trainings sent, {answered} answered 2xx, {in_store} in the store, "
        f"{counted} counted in the indicators"
    )
    rows = [
        Row(
            "B3",
            f"trainings on {enterprises} enterprises, {c} connections (baseline: B1)",
            "req/s",
            ours=load.rate.median,
            baseline=b1[c].rate.median,
            ratio_target=0.8,
            details={"ours": load.as_json()},
        )
        for c, load in loads.items()
    ]
    rows.append(
        Row(
            "B3",
            "5xx answers to trainings",
            "",
            ours=sum(load.server_errors for load in loads.values()),
            limit=0,
            target_text="0",
            details={"409": sum(load.conflicts for load in loads.values())},
        )
    )
    # wrk stops with a request per connection unanswered, which may have been carried out:
    # every 2xx must be in the store, nothing more than was sent, and each counted once.
    rows.append(
        Row(
            "B3",
            "trainings answered 2xx not in the store once, or not counted once in the indicators",
            "",
            ours=max(0, answered - in_store) + max(0, in_store - sent) + abs(counted - in_store),
            limit=0,
            target_text="0",
            details={
                "sent": sent,
                "answered_2xx": answered,
                "in_store": in_store,
                "in_indicators": counted,
            },
        )
    )
    return rows


def _client(token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        headers={"Authorization": f"Bearer {token}"}, timeout=30.0, trust_env=False
    )


async def _enrolled(url: str, token: str, count: int) -> list[tuple[str, str]]:
    async with _client(token) as client:
        return await freshness.enrolled_enterprises(client, url, count)


async def _participants(url: str, token: str, *, until: int = 0, within: float = 60.0) -> int:
    """`participants_trained` now, or once it reaches `until` (what it is after `within`)."""
    deadline = time.monotonic() + within
    async with _client(token) as client:
        while True:
            try:
                _, participants = await freshness.indicator_counts(client, url)
            except httpx.HTTPError:
                participants = -1
            if participants >= until or time.monotonic() > deadline:
                return participants
            await asyncio.sleep(0.1)


async def _settled_trainings(url: str, token: str, enterprise_ids: Sequence[str]) -> int:
    """The trainings recorded, once the count stays put: the requests wrk left unanswered when
    it stopped may still be carried out a moment later."""
    await asyncio.sleep(0.5)
    recorded = await _trainings_recorded(url, token, enterprise_ids)
    while True:
        await asyncio.sleep(0.5)
        again = await _trainings_recorded(url, token, enterprise_ids)
        if again == recorded:
            return recorded
        recorded = again


async def _trainings_recorded(url: str, token: str, enterprise_ids: Sequence[str]) -> int:
    """Trainings in the enterprises' histories, as the enrolment API shows them."""
    async with _client(token) as client:
        recorded = 0
        for enterprise_id in enterprise_ids:
            response = await client.get(f"{url}/v1/enterprises/{enterprise_id}")
            response.raise_for_status()
            recorded += sum(
                1 for entry in response.json()["history"] if "participants_trained" in entry["type"]
            )
        return recorded


# B2.


def on_postgres(profile: Profile, workdir: Path, say: Say) -> list[Row]:
    server = postgres.server()
    if server is None:
        return [
            Row(
                "B2",
                "registrations on PostgreSQL",
                "req/s",
                skipped=f"{postgres.SERVER_VARIABLE} is not set",
            )
        ]
    ours_database = postgres.fresh_database(server, "ours")
    peer_database = postgres.fresh_database(server, "peer")
    try:
        with (
            Ours(workdir / "score-postgres", enrolment_database=ours_database) as ours,
            Peer(workdir / "peer-postgres", postgres=peer_database) as peer,
        ):
            say("score up with enrolment on PostgreSQL, and the peer on PostgreSQL, are ready")
            targets = {
                OURS: registrations(ours.url("enrolment"), ours.token),
                PEER: registrations(peer.url, None),
            }
            loads = {
                c: measure(targets, connections=c, plan=profile.plan, said=say)
                for c in profile.connections
            }
        return _compared("B2", "PostgreSQL", loads, with_latency=False)
    finally:
        postgres.drop_database(server, ours_database)
        postgres.drop_database(server, peer_database)


# B4, B5.


def in_the_pipeline(profile: Profile, workdir: Path, say: Say) -> list[Row]:
    events = profile.pipeline_events
    (workdir / "pipeline").mkdir(parents=True, exist_ok=True)
    result = asyncio.run(pipeline.run(workdir / "pipeline", events))
    say(
        f"B4: relay {result.relay.per_second:,.0f}/s, raw {result.raw_publish.per_second:,.0f}/s;"
        f" B5: projection {result.catch_up.per_second:,.0f}/s,"
        f" raw {result.raw_fetch.per_second:,.0f}/s"
    )
    return [
        Row(
            "B4",
            f"outbox relay: {events:,} stored events → JetStream, acknowledged",
            "events/s",
            ours=result.relay.per_second,
            baseline=result.raw_publish.per_second,
            ratio_target=0.7,
            details={"ours": result.relay.as_json(), "raw": result.raw_publish.as_json()},
        ),
        Row(
            "B5",
            f"indicators catch-up: {events:,} events in JetStream → projection committed",
            "events/s",
            ours=result.catch_up.per_second,
            baseline=result.raw_fetch.per_second,
            ratio_target=0.4,
            floor=20_000,
            details={"ours": result.catch_up.as_json(), "raw": result.raw_fetch.as_json()},
        ),
    ]


# B7, B6.


def replay_size(profile: Profile, catch_up_rate: float | None) -> int:
    """How many events B6 replays: what B5's rate gets through in the profile's budget."""
    if profile.replay_events is not None:
        return profile.replay_events
    if catch_up_rate is None:
        return profile.pipeline_events
    fits = int(catch_up_rate * profile.replay_budget_seconds) // 50_000 * 50_000
    return max(50_000, min(profile.replay_max_events, fits))


def after_the_command(
    profile: Profile, workdir: Path, say: Say, *, catch_up_rate: float | None, with_b6: bool = True
) -> list[Row]:
    """B7, then (unless `with_b6` is false: B7 alone was asked for) B6 on the same system."""
    rows: list[Row] = []
    with Ours(
        workdir / "score-fresh",
        services=("enrolment", "indicators", "notifications"),
        environment={"SCORE_WEBHOOK_ALLOWED_HOSTS": LOOPBACK},  # B7's receiver
    ) as ours:
        say("score up with enrolment, indicators and notifications is ready")
        fresh = asyncio.run(
            freshness.measure(
                ours.url("enrolment"),
                ours.url("indicators"),
                ours.token,
                rate=profile.freshness_rate,
                seconds=profile.freshness_seconds,
                notifications_url=ours.url("notifications"),
            )
        )
        say(
            f"B7: {fresh.reached_rate:,.0f} commands/s sent, p50 {fresh.p50_ms or 0:,.1f} ms, "
            f"p99 {fresh.p99_ms or 0:,.1f} ms, {fresh.failed} failed, {fresh.unseen} unseen"
        )
        hooks = fresh.webhooks or freshness.Webhooks()
        say(
            f"B7: {hooks.announced} milestones announced, {hooks.received} webhooks received "
            f"({hooks.lost} lost, {hooks.twice} twice, {hooks.unverified} unsigned), "
            f"p50 {hooks.percentile_ms(0.5) or 0:,.1f} ms, "
            f"p99 {hooks.percentile_ms(0.99) or 0:,.1f} ms, "
            f"max {max(hooks.latencies_ms, default=0):,.1f} ms"
        )
        rate = profile.freshness_rate
        rows += [
            Row(
                "B7",
                f"commands sent per second, asked {rate:g}/s",
                "/s",
                ours=fresh.reached_rate,
                floor=0.95 * rate,
                details=fresh.as_json(),
            ),
            Row(
                "B7", "201 → visible in GET /v1/indicators, p50", "ms", ours=fresh.p50_ms, limit=25
            ),
            Row(
                "B7", "201 → visible in GET /v1/indicators, p99", "ms", ours=fresh.p99_ms, limit=100
            ),
            Row(
                "B7",
                "commands failed, or answered 201 and not visible within 30 s",
                "",
                ours=fresh.failed + fresh.unseen,
                limit=0,
                target_text="0",
            ),
            Row(
                "B7",
                "201 → webhook received for a milestone, p50",
                "ms",
                ours=hooks.percentile_ms(0.5),
            ),
            Row(
                "B7",
                "201 → webhook received for a milestone, p99",
                "ms",
                ours=hooks.percentile_ms(0.99),
                limit=500,
            ),
            Row(
                "B7",
                f"milestones announced during the load, {hooks.announced}: not received once, "
                "signed (lost, twice, unsigned)",
                "",
                ours=hooks.wrong if hooks.announced else None,
                limit=0,
                target_text="0",
            ),
        ]
        if not with_b6:
            return rows
        events = replay_size(profile, catch_up_rate)
        scaled = ""
        if events < 1_000_000 and profile.replay_events is None:
            scaled = (
                f" (1,000,000 scaled to what B5's rate replays in "
                f"{profile.replay_budget_seconds:g} s)"
            )
        elif events < 1_000_000:
            scaled = f" ({profile.name} run)"
        say(f"B6: publishing {events:,} events, then score replay")
        replayed = replay.measure(ours, events, timeout=max(600.0, events / 500))
        say(
            f"B6: {replayed.events:,} events in {replayed.seconds:,.1f} s, "
            f"peak RSS {replayed.peak_rss_mb:,.0f} MB"
        )
        rows += [
            Row(
                "B6",
                f"score replay indicators-projection over {replayed.events:,} events{scaled}"
                " (baseline: B5)",
                "events/s",
                ours=replayed.per_second,
                baseline=catch_up_rate,
                ratio_target=0.9,
                details=replayed.as_json(),
            ),
            Row(
                "B6",
                "peak RSS of indicators during the replay",
                "MB",
                ours=replayed.peak_rss_mb,
                limit=300,
            ),
        ]
    return rows
