"""Composition root of the visits service."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from score_chassis.consumer import Subscription
from score_chassis.http.app import create_app
from score_chassis.http.replay import replay_router
from score_chassis.logs import configure_logging
from score_chassis.runtime import Runtime
from score_contracts.subjects import STREAMS
from score_visits import api, handlers, views
from score_visits.settings import VisitsSettings
from score_visits.visit_list import LocalViews

MIGRATIONS = Path(__file__).parent / "migrations"

DESCRIPTION = """\
Trainers schedule and record the in-factory consultancy visits that follow each module's
workshop, and the improvements found; `visit_scheduled`, `visit_completed` and
`visit_cancelled` are published on `SCORE_VISITS`.

Whether an enterprise is enrolled and not withdrawn, and whether a trainer is certified, is
learnt from the enrolment service's events, a moment after they happen there. A visit that
needs a fact not yet arrived is refused with `409` and problem type `…/problems/not-known-yet`
and a `Retry-After` header: retry it. See `docs/visits.md`.
"""

REPLAY = """The views of enterprises, enrolments, trainers and certifications, from
`SCORE_ENROLMENT`. Until the rebuild is done, scheduling and completing a visit are refused as
*not known yet* (409, rule `views-rebuilding-not-known-yet`, retryable): a partly rebuilt view
may lack a withdrawal. Reads of visits go on answering, and the service stays ready."""


def subscriptions() -> list[Subscription]:
    return [
        Subscription(
            durable=views.DURABLE,
            stream=STREAMS["enrolment"],
            handler=views.project,
            clear=views.clear,
            view=views.VIEW,
        )
    ]


def build_app(settings: VisitsSettings | None = None) -> FastAPI:
    settings = settings or VisitsSettings()
    configure_logging(settings.service_name, level=settings.log_level, fmt=settings.log_format)
    runtime = Runtime(
        settings, context="visits", migrations=[MIGRATIONS], subscriptions=subscriptions()
    )
    return create_app(
        runtime,
        title="SCORE visits",
        description=DESCRIPTION,
        routers=[api.router, replay_router(views.VIEW, description=REPLAY)],
        commands=runtime.commands(handlers.routes(), LocalViews),
    )
