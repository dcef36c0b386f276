"""The words of a notification: one short sentence a chamber could forward as it is, in
Spanish (the default) or English, naming the place, the indicator, the figure and the date,
with a link to the dashboard.

Numbers and dates are written here, per language, without the `locale` module: the machine's
locales are not the reader's.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal
from zoneinfo import ZoneInfo

from score_contracts.events import MilestoneReached
from score_contracts.reference import NATIONAL

Language = Literal["es", "en"]
LANGUAGES: tuple[Language, ...] = ("es", "en")

COUNTRY_NAMES: dict[str, str] = {"bo": "Bolivia"}
REGION_NAMES: dict[str, str] = {
    "la_paz": "La Paz",
    "cochabamba": "Cochabamba",
    "santa_cruz": "Santa Cruz",
    "oruro": "Oruro",
    "potosi": "Potosí",
    "chuquisaca": "Chuquisaca",
    "tarija": "Tarija",
    "beni": "Beni",
    "pando": "Pando",
}

MONTHS_ES = (
    "enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre diciembre"
).split()
MONTHS_EN = (
    "January February March April May June July August September October November December"
).split()


@dataclass(frozen=True, slots=True)
class Count:
    """An indicator that counts things: its words in each language, one and many."""

    es: tuple[str, str]
    es_unit: tuple[str, str]
    feminine: bool
    en: tuple[str, str]
    en_unit: tuple[str, str]


@dataclass(frozen=True, slots=True)
class Share:
    """An indicator that is a percentage: what it is a share of, in each language."""

    es: str
    en: str


_ENTERPRISE = {"es_unit": ("empresa", "empresas"), "en_unit": ("enterprise", "enterprises")}
_TRAINER = {"es_unit": ("formador", "formadores"), "en_unit": ("trainer", "trainers")}
_PERSON = {"es_unit": ("persona", "personas"), "en_unit": ("person", "people")}
_MODULE = {"es_unit": ("módulo", "módulos"), "en_unit": ("module", "modules")}
_VISIT = {"es_unit": ("visita", "visitas"), "en_unit": ("visit", "visits")}


def _enterprises(es: tuple[str, str], en: tuple[str, str]) -> Count:
    return Count(es=es, feminine=True, en=en, **_ENTERPRISE)


INDICATORS: dict[str, Count | Share] = {
    "enterprises_registered": _enterprises(
        ("empresa registrada", "empresas registradas"),
        ("registered enterprise", "registered enterprises"),
    ),
    "enterprises_enrolled": _enterprises(
        ("empresa inscrita", "empresas inscritas"),
        ("enrolled enterprise", "enrolled enterprises"),
    ),
    "enterprises_trained": _enterprises(
        ("empresa capacitada", "empresas capacitadas"),
        ("trained enterprise", "trained enterprises"),
    ),
    "enterprises_trained_direct": _enterprises(
        ("empresa capacitada directamente", "empresas capacitadas directamente"),
        ("enterprise trained directly", "enterprises trained directly"),
    ),
    "enterprises_trained_partner": _enterprises(
        ("empresa alcanzada por socios", "empresas alcanzadas por socios"),
        ("enterprise reached through partners", "enterprises reached through partners"),
    ),
    "modules_completed": Count(
        es=("módulo completado", "módulos completados"),
        feminine=False,
        en=("module completed", "modules completed"),
        **_MODULE,
    ),
    "participants_trained": Count(
        es=("participante capacitado", "participantes capacitados"),
        feminine=False,
        en=("participant trained", "participants trained"),
        es_unit=("participante", "participantes"),
        en_unit=("participant", "participants"),
    ),
    "employees_benefited": Count(
        es=("trabajador beneficiado", "trabajadores beneficiados"),
        feminine=False,
        en=("employee benefited", "employees benefited"),
        **_PERSON,
    ),
    "trainers_trained": Count(
        es=("formador capacitado", "formadores capacitados"),
        feminine=False,
        en=("trainer trained", "trainers trained"),
        **_TRAINER,
    ),
    "trainers_certified": Count(
        es=("formador certificado", "formadores certificados"),
        feminine=False,
        en=("certified trainer", "certified trainers"),
        **_TRAINER,
    ),
    "visits_completed": Count(
        es=("visita de seguimiento realizada", "visitas de seguimiento realizadas"),
        feminine=True,
        en=("follow-up visit made", "follow-up visits made"),
        **_VISIT,
    ),
    "improvements_recorded": Count(
        es=("mejora registrada", "mejoras registradas"),
        feminine=True,
        en=("improvement recorded", "improvements recorded"),
        es_unit=("mejora", "mejoras"),
        en_unit=("improvement", "improvements"),
    ),
    "case_studies_published": Count(
        es=("estudio de caso publicado", "estudios de caso publicados"),
        feminine=False,
        en=("case study published", "case studies published"),
        es_unit=("estudio", "estudios"),
        en_unit=("case study", "case studies"),
    ),
    "regions_active": Count(
        es=("región activa", "regiones activas"),
        feminine=True,
        en=("active region", "active regions"),
        es_unit=("región", "regiones"),
        en_unit=("region", "regions"),
    ),
    "new_regions": Count(
        es=("región nueva", "regiones nuevas"),
        feminine=True,
        en=("new region", "new regions"),
        es_unit=("región", "regiones"),
        en_unit=("region", "regions"),
    ),
    "new_chambers": Count(
        es=("cámara nueva", "cámaras nuevas"),
        feminine=True,
        en=("new chamber", "new chambers"),
        es_unit=("cámara", "cámaras"),
        en_unit=("chamber", "chambers"),
    ),
    "women_share_trainers": Share(
        es="de mujeres entre los formadores", en="women among the trainers"
    ),
    "cost_recovery_pct": Share(es="de recuperación de costos", en="cost recovery"),
}


@dataclass(frozen=True, slots=True)
class Message:
    subject: str
    text: str
    html: str
    sentence: str
    """The one sentence that says it all (the webhook's `message.text`)."""


def number(value: Decimal, language: Language) -> str:
    """`value` as its readers write it: 11.800 and 42,5 in Spanish, 11,800 and 42.5 in English."""
    quantized = value.quantize(Decimal("0.1")) if value != value.to_integral() else value
    whole, _, fraction = format(quantized.normalize(), "f").partition(".")
    sign = "-" if whole.startswith("-") else ""
    digits = whole.lstrip("-")
    groups: list[str] = []
    while len(digits) > 3:
        digits, group = digits[:-3], digits[-3:]
        groups.insert(0, group)
    groups.insert(0, digits)
    thousands, decimal = (".", ",") if language == "es" else (",", ".")
    written = sign + thousands.join(groups)
    return f"{written}{decimal}{fraction}" if fraction else written


def date(day: dt.date, language: Language) -> str:
    """3 de marzo de 2026; 3 March 2026."""
    if language == "es":
        return f"{day.day} de {MONTHS_ES[day.month - 1]} de {day.year}"
    return f"{day.day} {MONTHS_EN[day.month - 1]} {day.year}"


def place(scope: str, country: str) -> str:
    """The region's name, or the country's for a national milestone."""
    if scope == NATIONAL:
        return COUNTRY_NAMES.get(country, country.upper())
    return REGION_NAMES.get(scope, scope.replace("_", " ").title())


_ROMAN = {1: "I", 2: "II", 3: "III", 4: "IV", 5: "V", 6: "VI", 7: "VII", 8: "VIII"}


def phase_title(phase: str, language: Language) -> str:
    """`phase-3` as Fase III / Phase III; another id as it is."""
    matched = re.fullmatch(r"phase-([0-9]+)", phase)
    if matched is None:
        return phase
    numeral = _ROMAN.get(int(matched.group(1)), matched.group(1))
    return f"{'Fase' if language == 'es' else 'Phase'} {numeral}"


def _fallback(indicator: str) -> Count:
    words = indicator.replace("_", " ")
    return Count(
        es=(words, words), es_unit=("", ""), feminine=False, en=(words, words), en_unit=("", "")
    )


def _one(amount: Decimal) -> bool:
    return amount == 1


def sentence(milestone: MilestoneReached, language: Language, *, country: str, zone: str) -> str:
    """The milestone in one sentence, e.g. "Tarija alcanzó su primera empresa capacitada en
    SCORE (1 empresa, 3 de marzo de 2026)."."""
    where = place(milestone.scope, country)
    when = date(milestone.reached_at.astimezone(ZoneInfo(zone)).date(), language)
    words = INDICATORS.get(milestone.indicator) or _fallback(milestone.indicator)
    threshold, value = milestone.threshold, milestone.value
    es = language == "es"
    if isinstance(words, Share):
        figure = f"{number(value, language)} %" if es else f"{number(value, language)}%"
        target = (
            f"el {number(threshold, language)} % {words.es}"
            if es
            else (f"{number(threshold, language)}% {words.en}")
        )
    else:
        many, unit = (words.es, words.es_unit) if es else (words.en, words.en_unit)
        noun = many[0] if _one(value) else many[1]
        unit_noun = unit[0] if _one(value) else unit[1]
        figure = f"{number(value, language)} {unit_noun or noun}".strip()
        if _one(threshold) and milestone.phase is None:
            first = ("su primera" if words.feminine else "su primer") if es else "its first"
            target = f"{first} {many[0]}"
        else:
            target = f"{number(threshold, language)} {many[0] if _one(threshold) else many[1]}"
    if milestone.phase is not None:
        phase = phase_title(milestone.phase, language)
        if es:
            return f"{where} cumplió la meta de la {phase} en SCORE: {target} ({figure}, {when})."
        return f"{where} met the {phase} target in SCORE: {target} ({figure}, {when})."
    if es:
        return f"{where} alcanzó {target} en SCORE ({figure}, {when})."
    return f"{where} reached {target} in SCORE ({figure}, {when})."


def message(
    milestone: MilestoneReached,
    language: Language,
    *,
    country: str,
    zone: str,
    dashboard_url: str,
) -> Message:
    """The notification of `milestone` in `language`: a subject, a plain-text and an HTML body."""
    said = sentence(milestone, language, country=country, zone=zone)
    where = place(milestone.scope, country)
    if language == "es":
        subject = f"SCORE: {where} alcanzó un hito"
        see = "Vea los indicadores en el tablero de SCORE"
        why = "Recibe este aviso porque su cámara está suscrita a los hitos de SCORE."
    else:
        subject = f"SCORE: {where} reached a milestone"
        see = "See the indicators on the SCORE dashboard"
        why = "You receive this notice because your chamber subscribed to SCORE's milestones."
    text = f"{said}\n\n{see}: {dashboard_url}\n\n--\n{why}\n"
    link = html.escape(dashboard_url, quote=True)
    body = (
        f'<!doctype html><html lang="{language}"><body>'
        f"<p>{html.escape(said)}</p>"
        f'<p><a href="{link}">{html.escape(see)}</a></p>'
        f'<p style="color:#666;font-size:smaller">{html.escape(why)}</p>'
        "</body></html>"
    )
    return Message(subject=subject, text=text, html=body, sentence=said)
