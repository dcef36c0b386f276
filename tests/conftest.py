from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from score_cli.up import System, free_port_base


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """nats-server and every installed service as separate processes, as `score up` runs them."""
    data_dir: Path = tmp_path_factory.mktemp("score")
    with System(data_dir, port_base=free_port_base()) as running:
        yield running
