"""The harness (`bench/`) is not a package of the workspace: its tests import it from the
checkout, as `python -m bench` does from there."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
