"""The words of a notification, in Spanish and English, as a chamber would forward them."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from score_notifications.messages import date, message, number, sentence

from .conftest import milestone

LA_PAZ = "America/La_Paz"


@pytest.mark.parametrize(
    ("value", "es", "en"),
    [
        ("1", "1", "1"),
        ("11800", "11.800", "11,800"),
        ("1234567", "1.234.567", "1,234,567"),
        ("42.35", "42,4", "42.4"),
        ("100.0", "100", "100"),
        ("0.5", "0,5", "0.5"),
    ],
)
def test_numbers_are_written_as_each_language_writes_them(value: str, es: str, en: str) -> None:
    assert (number(Decimal(value), "es"), number(Decimal(value), "en")) == (es, en)


def test_dates_name_their_month() -> None:
    day = dt.date(2026, 3, 3)
    assert (date(day, "es"), date(day, "en")) == ("3 de marzo de 2026", "3 March 2026")


def test_the_date_is_the_programme_s_day() -> None:
    # 01:30 UTC on 4 March is still 3 March in La Paz.
    late = milestone("tarija", reached_at=dt.datetime(2026, 3, 4, 1, 30, tzinfo=dt.UTC))
    assert "3 de marzo de 2026" in sentence(late, "es", country="bo", zone=LA_PAZ)


@pytest.mark.parametrize(
    ("reached", "es", "en"),
    [
        (
            milestone("tarija"),
            "Tarija alcanzó su primera empresa capacitada en SCORE "
            "(1 empresa, 3 de marzo de 2026).",
            "Tarija reached its first trained enterprise in SCORE (1 enterprise, 3 March 2026).",
        ),
        (
            milestone("santa_cruz", "trainers_certified", "1"),
            "Santa Cruz alcanzó su primer formador certificado en SCORE "
            "(1 formador, 3 de marzo de 2026).",
            "Santa Cruz reached its first certified trainer in SCORE (1 trainer, 3 March 2026).",
        ),
        (
            milestone("national", threshold="60", value="63"),
            "Bolivia alcanzó 60 empresas capacitadas en SCORE (63 empresas, 3 de marzo de 2026).",
            "Bolivia reached 60 trained enterprises in SCORE (63 enterprises, 3 March 2026).",
        ),
        (
            milestone("national", "women_share_trainers", "40", "42.35"),
            "Bolivia alcanzó el 40 % de mujeres entre los formadores en SCORE "
            "(42,4 %, 3 de marzo de 2026).",
            "Bolivia reached 40% women among the trainers in SCORE (42.4%, 3 March 2026).",
        ),
        (
            milestone("national", "enterprises_trained_direct", "40", "41", phase="phase-3"),
            "Bolivia cumplió la meta de la Fase III en SCORE: 40 empresas capacitadas "
            "directamente (41 empresas, 3 de marzo de 2026).",
            "Bolivia met the Phase III target in SCORE: 40 enterprises trained directly "
            "(41 enterprises, 3 March 2026).",
        ),
        (
            milestone("potosi", "employees_benefited", "10000", "11800"),
            "Potosí alcanzó 10.000 trabajadores beneficiados en SCORE "
            "(11.800 personas, 3 de marzo de 2026).",
            "Potosí reached 10,000 employees benefited in SCORE (11,800 people, 3 March 2026).",
        ),
    ],
)
def test_one_sentence_names_the_place_the_indicator_the_figure_and_the_date(
    reached: object, es: str, en: str
) -> None:
    assert sentence(reached, "es", country="bo", zone=LA_PAZ) == es  # type: ignore[arg-type]
    assert sentence(reached, "en", country="bo", zone=LA_PAZ) == en  # type: ignore[arg-type]


def test_the_message_links_the_dashboard_and_escapes_its_html() -> None:
    said = message(
        milestone("tarija"),
        "es",
        country="bo",
        zone=LA_PAZ,
        dashboard_url="https://score.example.bo/?a=1&b=2",
    )
    assert said.subject == "SCORE: Tarija alcanzó un hito"
    assert said.text.startswith(said.sentence)
    assert "https://score.example.bo/?a=1&b=2" in said.text
    assert 'href="https://score.example.bo/?a=1&amp;b=2"' in said.html
    assert '<html lang="es">' in said.html
