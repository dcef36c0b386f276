from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from score_cli.nats_server import free_port
from score_cli.up import StartFailed, System, free_port_base


def _started(data_dir: Path) -> System:
    # Never NATS' usual 4222: it may be this machine's own nats-server.
    system = System(data_dir, nats_port=free_port(), port_base=free_port_base())
    system.__enter__()
    if system.given_up:  # a service that could not bind its port, say: not a system to test
        system.stop()
        raise StartFailed(f"given up on {', '.join(system.given_up)}")
    return system


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """nats-server and every installed service as separate processes, as `score up` runs them."""
    data_dir: Path = tmp_path_factory.mktemp("score")
    try:
        running = _started(data_dir)
    except StartFailed as failure:
        # A free port can be taken by another process between the check and the bind:
        # once, take another block rather than fail the module.
        print(f"score up failed to start ({failure}); trying other ports")
        running = _started(data_dir)
    try:
        yield running
    finally:
        running.stop()
