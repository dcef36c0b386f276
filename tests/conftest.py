from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from score_cli.up import StartFailed, System, free_port_base


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """nats-server and every installed service as separate processes, as `score up` runs them."""
    data_dir: Path = tmp_path_factory.mktemp("score")
    try:
        running = System(data_dir, port_base=free_port_base()).__enter__()
    except StartFailed as failure:
        # A free port can be taken by another process between the check and the bind:
        # once, take another block rather than fail the module.
        print(f"score up failed to start ({failure}); trying other ports")
        running = System(data_dir, port_base=free_port_base()).__enter__()
    try:
        yield running
    finally:
        running.stop()
