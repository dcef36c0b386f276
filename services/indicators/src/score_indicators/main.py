"""Composition root of the indicators service."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncConnection

from score_chassis.consumer import Subscription
from score_chassis.http.app import create_app
from score_chassis.http.replay import replay_router
from score_chassis.logs import configure_logging
from score_chassis.runtime import Runtime
from score_chassis.view import Kept
from score_contracts.subjects import STREAMS
from score_indicators import dashboard
from score_indicators.api import router
from score_indicators.indicators import Scope, Value, compute
from score_indicators.milestones import MilestoneWatch
from score_indicators.programme import load_programme
from score_indicators.projection import BUILT_BESIDE, PROJECTION, clear, project
from score_indicators.settings import IndicatorsSettings
from score_indicators.targets import TargetValue

MIGRATIONS = Path(__file__).parent / "migrations"

FED_BY = ("enrolment", "visits")
"""The streams the projection is built from, one durable consumer each."""


def subscriptions() -> list[Subscription]:
    return [
        Subscription(
            durable=f"indicators-projection-{context}",
            stream=STREAMS[context],
            handler=project,
            clear=clear,
            view=PROJECTION,
            beside=BUILT_BESIDE,
        )
        for context in FED_BY
    ]


def build_app(settings: IndicatorsSettings | None = None) -> FastAPI:
    settings = settings or IndicatorsSettings()
    configure_logging(settings.service_name, level=settings.log_level, fmt=settings.log_format)
    runtime = Runtime(
        settings, context="indicators", migrations=[MIGRATIONS], subscriptions=subscriptions()
    )
    app = create_app(
        runtime,
        title="SCORE indicators",
        description="The programme's running totals, progress to targets and milestones.",
        routers=[
            router,
            replay_router(
                PROJECTION,
                description="The facts the indicators are counted from, fed by "
                "`SCORE_ENROLMENT` and `SCORE_VISITS`. The new projection is built beside the "
                "served one: until it has caught up, the indicators, targets, exports and "
                "dashboard answer the old, complete figures, and no milestone is announced "
                "again.",
            ),
        ],
    )
    programme = app.state.programme = load_programme(settings.programme)
    # The figures of each scope asked for, until the projection changes (each is counted from
    # it alone): a dashboard polling them costs a look at the projection's version.
    figures = app.state.figures = Kept[Scope, dict[str, Value]](PROJECTION)
    app.state.targets = Kept[tuple[str, str | None], list[TargetValue]](PROJECTION)

    async def counted(conn: AsyncConnection, scope: Scope) -> dict[str, Value]:
        return await figures.get(conn, scope, lambda: compute(conn, scope))

    watch = MilestoneWatch(
        runtime.database,
        programme,
        country=settings.country,
        source=runtime.source,
        figures=counted,
        on_recorded=runtime.relay.notify,
    )
    runtime.alongside.append(watch.run)
    for consumer in runtime.consumers:
        consumer.on_handled = watch.notify
    app.state.milestones = watch
    dashboard.attach(app)
    return app
