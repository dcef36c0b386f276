"""The `score` command itself."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version


def test_score_version_names_the_installed_release() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "score_cli.main", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"score {version('score-cli')}"
