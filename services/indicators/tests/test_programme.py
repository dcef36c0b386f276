"""The programme's configuration: the shipped file, and a bad file stopping the service with
the line and the key at fault."""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from score_indicators.programme import DEFAULT_FILE, ProgrammeError, load_programme

ROOT = Path(__file__).parents[3]


def test_the_deploy_configuration_is_the_shipped_programme() -> None:
    deployed = ROOT / "deploy" / "config" / "programme.toml"
    assert deployed.read_bytes() == DEFAULT_FILE.read_bytes()
    programme = load_programme(deployed)
    phase = programme.phase("phase-3")
    assert phase is not None
    assert {key: int(value) for key, value in phase.targets.items()} == {
        "enterprises_trained_direct": 40,
        "enterprises_trained_partner": 30,
        "trainers_trained": 10,
        "new_regions": 4,
        "new_chambers": 4,
        "case_studies_published": 7,
        "cost_recovery_pct": 100,
    }
    kinds = {m.id: m for m in programme.milestones}
    assert kinds["region-first-trained-enterprise"].scope == "regions"
    assert kinds["enterprises-trained-every-10"].every == Decimal(10)
    assert kinds["phase-target-met"].targets == "all"
    assert kinds["women-share-of-trainers-40"].at == (Decimal(40),)


GOOD = DEFAULT_FILE.read_text(encoding="utf-8")


def written(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "programme.toml"
    path.write_text(text, encoding="utf-8")
    return path


def line_of(text: str, fragment: str, nth: int = 1) -> int:
    found = [n for n, line in enumerate(text.splitlines(), 1) if fragment in line]
    return found[nth - 1]


@pytest.mark.parametrize(
    ("change", "key", "fragment", "says"),
    [
        (
            ("new_chambers = 4", "new_chamber = 4"),
            "phases.1.targets.new_chamber",
            ("new_chamber = 4", 1),
            "'new_chambers'",
        ),
        (
            ("ends_on = 2019-11-30", "ends_on = 2016-11-30"),
            "phases.1.ends_on",
            ("ends_on = 2016-11-30", 1),
            "ends before it starts",
        ),
        (
            ('scope = "national"\nevery = 10', 'scope = "nationwide"\nevery = 10'),
            "milestones.1.scope",
            ('scope = "nationwide"', 1),
            "'national' or 'regions'",
        ),
        (
            ("every = 10", "every = 10\nat = [5]"),
            "milestones.1",
            ("[[milestones]]", 2),
            "exactly one of at, every or targets",
        ),
    ],
)
def test_a_bad_programme_names_the_line_and_the_key(
    tmp_path: Path, change: tuple[str, str], key: str, fragment: tuple[str, int], says: str
) -> None:
    text = GOOD.replace(*change)
    assert text != GOOD
    path = written(tmp_path, text)
    with pytest.raises(ProgrammeError) as raised:
        load_programme(path)
    message = str(raised.value)
    assert message.startswith(f"{path}:{line_of(text, *fragment)}: {key}: "), message
    assert says in message


def test_a_file_that_is_not_toml_names_its_line(tmp_path: Path) -> None:
    text = GOOD.replace("starts_on = 2017-11-01", "starts_on = 2017-11-")
    path = written(tmp_path, text)
    with pytest.raises(ProgrammeError, match=r"not valid TOML: .*\(at line (\d+)") as raised:
        load_programme(path)
    assert f"(at line {line_of(text, 'starts_on = 2017-11-')}," in str(raised.value)


def test_the_service_does_not_start_on_a_bad_programme(tmp_path: Path) -> None:
    path = written(tmp_path, GOOD.replace("new_chambers = 4", "new_chamber = 4"))
    environment = {
        **os.environ,
        "SCORE_PROGRAMME": str(path),
        "SCORE_AUTH_SECRET": "a-secret-of-at-least-thirty-two-characters",
        "SCORE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'indicators.db'}",
        "SCORE_HTTP_PORT": "1",
    }
    started = subprocess.run(
        [sys.executable, "-m", "score_indicators"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert started.returncode == 2
    line = line_of(path.read_text(), "new_chamber = 4")
    assert f"{path}:{line}: phases.1.targets.new_chamber: " in started.stderr
