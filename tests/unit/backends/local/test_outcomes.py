from __future__ import annotations

import pytest

from astrago.backends.local.outcomes import outcome_of
from astrago.backends.local.process import ProcessIdentity
from astrago.backends.local.runner import RunnerStatus
from astrago.domain.enums import ReplicaState
from tests.unit.backends.local.test_records import intent

RUNNING = intent().with_runner(ProcessIdentity(pid=4242, start_ticks=1, boot_id="b"), started_at=1.0)


def finished(
    *,
    exit_code: int | None = None,
    signal: int | None = None,
    stop_reason: str | None = None,
    error: str | None = None,
) -> RunnerStatus:
    return RunnerStatus(
        runner_pid=4242,
        child_pid=4243,
        started_at=1.0,
        finished_at=2.0,
        exit_code=exit_code,
        signal=signal,
        stop_reason=stop_reason,
        error=error,
    )


@pytest.mark.parametrize(
    ("status", "state", "exit_code", "reason"),
    [
        (finished(exit_code=0), ReplicaState.SUCCEEDED, 0, "exited with code 0"),
        (finished(exit_code=3), ReplicaState.FAILED, 3, "exited with code 3"),
        (finished(signal=9), ReplicaState.FAILED, 137, "killed by signal 9 (SIGKILL)"),
        (
            finished(exit_code=127, error="cannot run 'nope': No such file or directory"),
            ReplicaState.FAILED,
            127,
            "exited with code 127: cannot run 'nope': No such file or directory",
        ),
        (
            finished(signal=15, stop_reason="exceeded max runtime of 60s"),
            ReplicaState.STOPPED,
            143,
            "exceeded max runtime of 60s",
        ),
    ],
)
def test_exit_status_to_outcome(
    status: RunnerStatus, state: ReplicaState, exit_code: int, reason: str
) -> None:
    outcome = outcome_of(RUNNING, status, runner_returncode=0)
    assert (outcome.state, outcome.exit_code, outcome.reason) == (state, exit_code, reason)
    assert outcome.finished_at == 2.0


def test_a_requested_stop_wins_over_how_the_command_ended() -> None:
    stopping = RUNNING.with_stop("cancelled by alice", 5.0)
    outcome = outcome_of(stopping, finished(exit_code=0), runner_returncode=0)
    assert (outcome.state, outcome.reason) == (ReplicaState.STOPPED, "cancelled by alice")


def test_a_runner_stopped_before_its_handlers_is_stopped() -> None:
    outcome = outcome_of(RUNNING.with_stop("preempted", 5.0), None, runner_returncode=-15)
    assert (outcome.state, outcome.reason) == (ReplicaState.STOPPED, "preempted")


def test_a_runner_killed_without_a_status_is_lost_with_the_signal() -> None:
    outcome = outcome_of(RUNNING, RunnerStatus(runner_pid=4242, child_pid=4243), runner_returncode=-9)
    assert outcome.state is ReplicaState.LOST
    assert outcome.reason == (
        "its runner process 4242 ended (killed by signal 9 (SIGKILL)) without recording how the command ended"
    )
