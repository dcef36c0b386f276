"""The Bolivia factsheet (results to October 2017) as a sequence of API requests.

Since 2013: 63 enterprises trained in La Paz, Cochabamba and Santa Cruz (54 of them in
Modules 1 and 5), over 530 workers and managers trained, over 11,800 employees benefiting,
31 trainers trained of whom 42 % women, 22 of them certified. The three enterprises the
factsheet names (Boshami, Delizia, Tusequis) are here with their case studies; the others
are numbered; the three are visited after Module 1 and their improvements recorded. Every
figure is made by events through the public API, not written anywhere.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

REGIONS = ("la_paz", "cochabamba", "santa_cruz")
CHAMBERS = {
    "la_paz": "Cámara Nacional de Industrias",
    "cochabamba": "Cámara Departamental de Industria de Cochabamba",
    "santa_cruz": "CAINCO",
}
ENTERPRISES = 63
IN_MODULES_1_AND_5 = 54
TRAINERS = 31
WOMEN_TRAINERS = 13  # 41.9 %, the factsheet's "42 %"
CERTIFIED_TRAINERS = 22
NAMED = {
    0: ("Boshami", "textiles"),
    1: ("Delizia", "food"),
    2: ("Tusequis", "furniture"),
}
CASE_STUDIES = {
    0: "Boshami: women workers lead the 5S of the cutting floor",
    1: "Delizia: a visible notice board and a suggestion box",
    2: "Tusequis: the warehouse reorganised",
}
IMPROVEMENTS = [
    {"area": "5S", "description": "The work space was organised after 5S"},
    {"area": "communication", "description": "A visible notice board and a suggestion box"},
    {"area": "warehouse", "description": "The warehouse reorganised, freeing work space"},
]


@dataclass(frozen=True)
class Request:
    """One call to the public API; `refer` names ids of earlier answers it needs."""

    key: str
    service: str
    path: str
    body: dict[str, Any]
    remember: str | None = None
    """Name under which the answer's ids are kept for later requests."""
    needs: dict[str, str] = field(default_factory=dict)
    """Placeholders in `path`/`body` → remembered name.field."""


def workforce(n: int) -> dict[str, int]:
    # Between 125 and 250 people, about 40 % women: the 63 of them make 11,844 employees.
    total = 125 + (n * 37) % 126
    women = total * 2 // 5
    return {"women": women, "men": total - women}


def _day(year: int, month: int, day: int = 1) -> str:
    return dt.date(year, month, day).isoformat()


def requests() -> Iterator[Request]:
    """The whole scenario, in an order the rules accept."""
    for t in range(TRAINERS):
        yield Request(
            key=f"demo-trainer-{t}",
            service="enrolment",
            path="/v1/trainers",
            body={
                "name": f"Trainer {t + 1:02d}",
                "sex": "female" if t < WOMEN_TRAINERS else "male",
                "region": REGIONS[t % 3],
                "organisation": "CEPB",
                "registered_on": _day(2013 + t % 4, 3 + t % 6),
            },
            remember=f"trainer-{t}",
        )
        if t < CERTIFIED_TRAINERS:
            yield Request(
                key=f"demo-certification-{t}",
                service="enrolment",
                path="/v1/trainers/{trainer}/certifications",
                body={
                    "modules": [1, 5],
                    "level": "expert" if t % 7 == 0 else "trainer",
                    "certified_on": _day(2014 + t % 4, 10),  # the year after the workshop
                },
                needs={"trainer": f"trainer-{t}.id"},
            )
    for n in range(ENTERPRISES):
        region = REGIONS[n % 3]
        name, sector = NAMED.get(
            n, (f"PyME {region.replace('_', ' ').title()} {n + 1:02d}", "manufacturing")
        )
        year = 2013 + n % 5
        yield Request(
            key=f"demo-enterprise-{n}",
            service="enrolment",
            path="/v1/enterprises",
            body={
                "name": name,
                "tax_id": f"{1000000 + n * 7919}",
                "region": region,
                "sector": sector,
                "chamber": CHAMBERS[region],
                "workforce": workforce(n),
                "registered_on": _day(year, 2),
            },
            remember=f"enterprise-{n}",
        )
        modules = (1, 5) if n < IN_MODULES_1_AND_5 else (1,)
        for module in modules:
            month = 3 if module == 1 else 8
            yield Request(
                key=f"demo-enrolment-{n}-{module}",
                service="enrolment",
                path="/v1/enterprises/{enterprise}/enrolments",
                body={
                    "module": module,
                    "delivery": "direct",
                    "delivery_cost": {"amount": "5000"},
                    "enrolled_on": _day(year, month),
                },
                needs={"enterprise": f"enterprise-{n}.id"},
                remember=f"enrolment-{n}-{module}",
            )
            yield Request(
                key=f"demo-training-{n}-{module}",
                service="enrolment",
                path="/v1/enterprises/{enterprise}/trainings",
                body={
                    "enrolment_id": "{enrolment}",
                    "trained_on": _day(year, month, 15),
                    "trainer_id": "{trainer}",
                    "managers": {"women": 1, "men": 1},
                    "workers": {"women": 2, "men": 1} if module == 1 else {"women": 1, "men": 1},
                },
                needs={
                    "enterprise": f"enterprise-{n}.id",
                    "enrolment": f"enrolment-{n}-{module}.enrolment_id",
                    "trainer": f"trainer-{n % CERTIFIED_TRAINERS}.id",
                },
            )
            yield Request(
                key=f"demo-fee-{n}-{module}",
                service="enrolment",
                path="/v1/enterprises/{enterprise}/payments",
                body={
                    "enrolment_id": "{enrolment}",
                    "amount": {"amount": "1500"},
                    "paid_on": _day(year, month, 20),
                    "payer": "enterprise",
                },
                needs={
                    "enterprise": f"enterprise-{n}.id",
                    "enrolment": f"enrolment-{n}-{module}.enrolment_id",
                },
            )
            yield Request(
                key=f"demo-completion-{n}-{module}",
                service="enrolment",
                path="/v1/enterprises/{enterprise}/completions",
                body={"enrolment_id": "{enrolment}", "completed_on": _day(year, month + 3)},
                needs={
                    "enterprise": f"enterprise-{n}.id",
                    "enrolment": f"enrolment-{n}-{module}.enrolment_id",
                },
            )
        if n in NAMED:
            # The factsheet's before-and-after pictures: a trainer's visit after Module 1.
            yield Request(
                key=f"demo-visit-{n}",
                service="visits",
                path="/v1/visits",
                body={
                    "enterprise_id": "{enterprise}",
                    "trainer_id": "{trainer}",
                    "module": 1,
                    "scheduled_for": _day(year, 4, 10),
                },
                needs={"enterprise": f"enterprise-{n}.id", "trainer": f"trainer-{n}.id"},
                remember=f"visit-{n}",
            )
            yield Request(
                key=f"demo-visit-completion-{n}",
                service="visits",
                path="/v1/visits/{visit}/completion",
                body={
                    "completed_on": _day(year, 4, 10),
                    "duration_hours": "4",
                    "improvements": [IMPROVEMENTS[n]],
                },
                needs={"visit": f"visit-{n}.id"},
            )
        if n in CASE_STUDIES:
            yield Request(
                key=f"demo-case-study-{n}",
                service="enrolment",
                path="/v1/enterprises/{enterprise}/case-studies",
                body={
                    "title": CASE_STUDIES[n],
                    "url": f"https://www.ilo.org/score/bolivia/case-{n + 1}",
                    "published_on": _day(2017, 9),
                },
                needs={"enterprise": f"enterprise-{n}.id"},
            )
