"""The status rules of `astrago.domain.lifecycle` on plain values: no database, no backend."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from astrago.domain.enums import ReplicaState as R
from astrago.domain.enums import WorkloadStatus as S
from astrago.domain.lifecycle import (
    NO_CHANGE,
    Observed,
    ReplicaFacts,
    StopRequest,
    WorkloadFacts,
    fold_observation,
    launch_failed,
    launched,
    replica_failure,
    settle,
    settle_unlaunched,
)
from astrago.domain.status import InvalidTransition

NOW = datetime(2026, 12, 1, 23, 0, tzinfo=UTC)


def gang(
    status: S, *states: R | None, stop: StopRequest | None = None, why: str | None = None
) -> WorkloadFacts:
    replicas = tuple(
        ReplicaFacts(
            i,
            state,
            exit_code=2 if state is R.FAILED else None,
            reason="exited with code 2" if state is R.FAILED else None,
        )
        for i, state in enumerate(states)
    )
    return WorkloadFacts(status=status, replicas=replicas, stop_requested=stop, stop_reason=why)


def test_all_replicas_running_makes_it_running_once() -> None:
    outcome = settle(gang(S.STARTING, R.RUNNING, R.RUNNING))
    assert (outcome.status, outcome.mark_started) == (S.RUNNING, True)
    assert [e.type for e in outcome.events] == ["Running"]
    assert settle(gang(S.RUNNING, R.RUNNING, R.RUNNING)) == NO_CHANGE


def test_an_admitted_gang_with_a_replica_still_starting_is_starting() -> None:
    assert settle(gang(S.ADMITTED, R.RUNNING, R.STARTING)).status == S.STARTING
    assert settle(gang(S.STARTING, R.RUNNING, None)) == NO_CHANGE


def test_all_succeeded_is_success() -> None:
    outcome = settle(gang(S.RUNNING, R.SUCCEEDED, R.SUCCEEDED))
    assert (outcome.status, outcome.reason, outcome.finished) == (
        S.SUCCEEDED,
        "all replicas exited with code 0",
        True,
    )


def test_one_failed_replica_stops_the_gang_then_fails_it_with_that_reason() -> None:
    first = settle(gang(S.RUNNING, R.RUNNING, R.FAILED, R.RUNNING))
    assert first.stop == (StopRequest.FAILURE, "replica 1: exited with code 2")
    assert first.status is None
    assert [e.type for e in first.events] == ["StopRequested"]
    stopped = gang(S.RUNNING, R.STOPPED, R.FAILED, R.STOPPED, stop=StopRequest.FAILURE, why=first.stop[1])
    final = settle(stopped)
    assert (final.status, final.reason, final.finished) == (S.FAILED, "replica 1: exited with code 2", True)


def test_a_gang_whose_replicas_all_ended_without_a_request_fails_with_the_first_broken_one() -> None:
    outcome = settle(gang(S.RUNNING, R.SUCCEEDED, R.LOST))
    assert (outcome.status, outcome.reason) == (S.FAILED, "replica 1: lost")


def test_cancel_ends_as_cancelled_with_the_users_reason() -> None:
    outcome = settle(gang(S.RUNNING, R.STOPPED, stop=StopRequest.CANCEL, why="cancelled by alice"))
    assert (outcome.status, outcome.reason, outcome.finished) == (S.CANCELLED, "cancelled by alice", True)


def test_preemption_goes_back_to_the_queue_through_preempted() -> None:
    outcome = settle(gang(S.RUNNING, R.STOPPED, stop=StopRequest.PREEMPT, why="for urgent-1"))
    assert outcome.transitions == (S.PREEMPTED, S.PENDING)
    assert (outcome.status, outcome.requeue, outcome.finished) == (S.PENDING, True, False)
    assert outcome.reason == "preempted (for urgent-1); waiting to run again"
    assert [e.type for e in outcome.events] == ["Preempted", "Pending"]


@pytest.mark.parametrize(
    ("request_", "status", "finished"),
    [
        (StopRequest.CANCEL, S.CANCELLED, True),
        (StopRequest.FAILURE, S.FAILED, True),
        (StopRequest.PREEMPT, S.PENDING, False),
    ],
)
def test_an_unlaunched_workload_settles_at_once(request_: StopRequest, status: S, finished: bool) -> None:
    outcome = settle_unlaunched(WorkloadFacts(S.ADMITTED, stop_requested=request_, stop_reason="why"))
    assert (outcome.status, outcome.finished) == (status, finished)
    assert settle_unlaunched(WorkloadFacts(S.ADMITTED)) == NO_CHANGE


def test_launch_outcomes() -> None:
    assert launched(S.ADMITTED).status == S.STARTING
    assert launched(S.RUNNING) == NO_CHANGE  # adopted after a restart: already further along
    failed = launch_failed(S.ADMITTED, "image not found")
    assert (failed.status, failed.reason, failed.finished) == (
        S.FAILED,
        "could not start: image not found",
        True,
    )
    assert launch_failed(S.CANCELLED, "late") == NO_CHANGE


def test_an_ended_replica_stays_ended_and_duplicates_change_nothing() -> None:
    ended = ReplicaFacts(0, R.SUCCEEDED, exit_code=0)
    assert fold_observation(ended, Observed(R.FAILED, exit_code=1), NOW) is None
    running = ReplicaFacts(0, R.RUNNING)
    assert fold_observation(running, Observed(R.RUNNING), NOW) is None


def test_an_observation_keeps_the_first_start_and_stamps_the_end() -> None:
    started = datetime(2026, 12, 1, 22, 0, tzinfo=UTC)
    running = fold_observation(ReplicaFacts(0), Observed(R.RUNNING, started_at=started), NOW)
    assert running is not None
    assert running.started_at == started
    done = fold_observation(running, Observed(R.SUCCEEDED, exit_code=0), NOW)
    assert done is not None
    assert (done.state, done.exit_code, done.started_at, done.finished_at) == (R.SUCCEEDED, 0, started, NOW)


def test_replica_failure_names_the_first_broken_replica() -> None:
    assert replica_failure(gang(S.RUNNING, R.RUNNING, R.STOPPED, R.FAILED).replicas) == "replica 1: stopped"
    assert replica_failure(gang(S.RUNNING, R.RUNNING).replicas) is None


def test_rules_never_skip_the_status_machine() -> None:
    with pytest.raises(InvalidTransition):
        settle(gang(S.SUCCEEDED, R.SUCCEEDED))
