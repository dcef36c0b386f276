"""Reference data: the SCORE core modules and the regions of the countries we run in."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

DEFAULT_COUNTRY: Final = "bo"
DEFAULT_CURRENCY: Final = "BOB"
NATIONAL: Final = "national"
"""The region token of events that belong to no region."""


@dataclass(frozen=True, slots=True)
class Module:
    number: int
    name_en: str
    name_es: str


MODULES: Final[dict[int, Module]] = {
    m.number: m
    for m in (
        Module(
            1,
            "Workplace Cooperation",
            "La cooperación en el lugar de trabajo: la base del éxito empresarial",
        ),
        Module(2, "Quality Management", "Calidad: gestión del mejoramiento continuo"),
        Module(
            3,
            "Productivity through Cleaner Production",
            "La productividad mediante una producción más limpia",
        ),
        Module(
            4,
            "Human Resource Management",
            "Administración del recurso humano para la cooperación y éxito empresarial",
        ),
        Module(
            5,
            "Occupational Safety and Health",
            "La seguridad y la salud en el trabajo: una plataforma para la productividad",
        ),
    )
}

REGIONS: Final[dict[str, tuple[str, ...]]] = {
    "bo": (
        "la_paz",
        "cochabamba",
        "santa_cruz",
        "oruro",
        "potosi",
        "chuquisaca",
        "tarija",
        "beni",
        "pando",
    ),
}
"""Known regions per ISO 3166-1 country code. Countries not listed accept any slug."""

SLUG = re.compile(r"^[a-z][a-z0-9_]*$")
COUNTRY_CODE = re.compile(r"^[a-z]{2}$")


def check_region(country: str, region: str) -> str:
    """Return `region` if it is a region of `country`; raise ValueError otherwise."""
    known = REGIONS.get(country)
    if known is not None and region not in known:
        raise ValueError(f"unknown region {region!r} for country {country!r}; one of {known}")
    if not SLUG.match(region) or region == NATIONAL:
        raise ValueError(f"region {region!r} is not a lowercase snake_case slug")
    return region
