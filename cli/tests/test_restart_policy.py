"""When the supervisor restarts a crashed child, and when it gives up on one."""

from __future__ import annotations

from pathlib import Path

from score_cli.up import ChildRecord, RestartPolicy

POLICY = RestartPolicy(first_delay=0.5, max_delay=30.0, stable_after=60.0, give_up_after=5)


def child_started_at(now: float) -> ChildRecord:
    child = ChildRecord("enrolment", Path("enrolment.log"))
    child.began(now)
    return child


def test_the_pause_doubles_with_each_crash_in_a_row_up_to_its_ceiling() -> None:
    assert [POLICY.delay(n) for n in range(1, 9)] == [0.5, 1, 2, 4, 8, 16, 30, 30]


def test_a_child_that_crashes_after_being_ready_is_restarted_ever_more_slowly() -> None:
    child, now, delays = child_started_at(0.0), 0.0, []
    for _ in range(8):
        child.became_ready()
        now += 5.0  # up, ready, and down again before it counts as recovered
        delays.append(child.crashed("was killed by SIGKILL", now, POLICY))
        child.restarts += 1
        child.began(now)
    assert delays == [0.5, 1, 2, 4, 8, 16, 30, 30]
    assert child.state == "running"


def test_a_child_that_stayed_up_for_a_while_starts_the_backoff_again() -> None:
    child = child_started_at(0.0)
    child.became_ready()
    assert child.crashed("exited with code 1", 10.0, POLICY) == 0.5
    child.began(10.5)
    child.became_ready()
    assert child.crashed("exited with code 1", 20.0, POLICY) == 1.0
    child.began(21.0)
    child.became_ready()
    assert child.crashed("exited with code 1", 21.0 + 60.0, POLICY) == 0.5


def test_a_child_that_never_becomes_ready_is_given_up_on_after_five_crashes() -> None:
    child, now = child_started_at(0.0), 0.0
    for _ in range(4):
        now += 1.0
        assert child.crashed("exited with code 3", now, POLICY) is not None
        assert child.state == "restarting"
        child.began(now)
    assert child.crashed("exited with code 3", now + 1.0, POLICY) is None
    assert child.state == "given up"
    assert child.as_json()["state"] == "given up"
    assert child.as_json()["last_exit"] == "exited with code 3"


def test_becoming_ready_once_forgives_the_failed_starts_before() -> None:
    child, now = child_started_at(0.0), 0.0
    for _ in range(4):
        now += 1.0
        child.crashed("exited with code 3", now, POLICY)
        child.began(now)
    child.became_ready()
    assert child.crashed("exited with code 3", now + 1.0, POLICY) is not None
