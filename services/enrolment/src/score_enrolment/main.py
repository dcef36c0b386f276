"""Composition root of the enrolment service."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from score_chassis.http.app import create_app
from score_chassis.logs import configure_logging
from score_chassis.runtime import Runtime
from score_enrolment import handlers
from score_enrolment.api import router
from score_enrolment.domain.enterprise import SizeRange
from score_enrolment.enterprise_list import EnterpriseList
from score_enrolment.settings import EnrolmentSettings

MIGRATIONS = Path(__file__).parent / "migrations"


def build_app(settings: EnrolmentSettings | None = None) -> FastAPI:
    settings = settings or EnrolmentSettings()
    configure_logging(settings.service_name, level=settings.log_level, fmt=settings.log_format)
    runtime = Runtime(settings, context="enrolment", migrations=[MIGRATIONS])
    routes = handlers.routes(SizeRange(settings.size_minimum, settings.size_maximum))
    return create_app(
        runtime,
        title="SCORE enrolment",
        description="Programme staff record the life of each enterprise and trainer.",
        routers=[router],
        commands=runtime.commands(routes, EnterpriseList),
    )
