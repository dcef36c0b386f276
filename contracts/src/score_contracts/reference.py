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
"""The regions of each country the programme runs in, by ISO 3166-1 code. A country is
accepted only where its regions are known: a record placed elsewhere could not be counted in
any region, nor sent to any chamber."""

COUNTRIES: Final[tuple[str, ...]] = tuple(REGIONS)
ALL_REGIONS: Final[tuple[str, ...]] = tuple(sorted({r for rs in REGIONS.values() for r in rs}))
"""Every known region slug, of any country (what an API enumerates)."""

SLUG = re.compile(r"^[a-z][a-z0-9_]*$")
COUNTRY_CODE = re.compile(r"^[a-z]{2}$")


def check_country(country: str) -> str:
    """Return `country` if the programme's regions are known for it; raise ValueError."""
    if country not in REGIONS:
        raise ValueError(f"unknown country {quoted(country)}; one of {', '.join(COUNTRIES)}")
    return country


def check_region(country: str, region: str) -> str:
    """Return `region` if it is a region of `country`; raise ValueError otherwise."""
    known = REGIONS[check_country(country)]
    if region not in known:
        raise ValueError(
            f"unknown region {quoted(region)} for country {country!r}; one of {', '.join(known)}"
        )
    return region


def quoted(value: str, limit: int = 40) -> str:
    """`value` quoted for an error message, cut to `limit` characters: a message must never
    echo a huge input back (nor grow with it)."""
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit]!r}… ({len(value)} characters)"
