"""How a workload's status follows from its replicas and the stop asked of it: pure functions over plain
values, so the rules are tested without a database and read in one place.

The controller turns rows into `WorkloadFacts`, asks `settle` (a launched workload) or `settle_unlaunched`
(one that never reached the backend) what follows, and writes the `Outcome` back. A gang lives and dies
together: the first failed replica stops the others, and the workload fails with that replica's reason."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from astrago.domain.enums import ReplicaState
from astrago.domain.enums import WorkloadStatus as S
from astrago.domain.status import check_transition

ENDED_REPLICA_STATES = frozenset(
    {ReplicaState.SUCCEEDED, ReplicaState.FAILED, ReplicaState.STOPPED, ReplicaState.LOST}
)
_BROKEN_REPLICA_STATES = frozenset({ReplicaState.FAILED, ReplicaState.LOST, ReplicaState.STOPPED})


class StopRequest(StrEnum):
    """Why the platform asked a workload to stop (stored in `workloads.stop_requested`)."""

    CANCEL = "cancel"  # a user cancelled it
    PREEMPT = "preempt"  # the scheduler needs its resources; it goes back to the queue
    FAILURE = "failure"  # one replica of the gang failed; the others are stopped


@dataclass(frozen=True, slots=True)
class ReplicaFacts:
    index: int
    state: ReplicaState | None = None  # None: nothing observed yet
    exit_code: int | None = None
    reason: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class WorkloadFacts:
    status: S
    replicas: tuple[ReplicaFacts, ...] = ()
    stop_requested: StopRequest | None = None
    stop_reason: str | None = None


@dataclass(frozen=True, slots=True)
class Observed:
    """What a backend reported for one replica (times as datetimes; `None` = not reported)."""

    state: ReplicaState
    exit_code: int | None = None
    reason: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Event:
    type: str
    reason: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """What to write back. `status` None: unchanged. `finished`: it ended for good (release it in the
    backend). `requeue`: preempted, back to the queue (its placements are dropped). `stop`: ask the backend
    to stop the rest of the gang for this reason."""

    status: S | None = None
    reason: str | None = None
    events: tuple[Event, ...] = ()
    finished: bool = False
    requeue: bool = False
    stop: tuple[StopRequest, str] | None = None
    mark_started: bool = False  # set started_at (first time RUNNING)
    transitions: tuple[S, ...] = field(default=())  # every status passed through, in order

    @property
    def changed(self) -> bool:
        return bool(self.transitions or self.stop or self.events)


NO_CHANGE = Outcome()


def replica_failure(replicas: Sequence[ReplicaFacts]) -> str | None:
    """The first broken replica, as a reason: 'replica 1: exited with code 2'."""
    for replica in replicas:
        if replica.state in _BROKEN_REPLICA_STATES:
            return f"replica {replica.index}: {replica.reason or str(replica.state).lower()}"
    return None


def fold_observation(replica: ReplicaFacts, observed: Observed, now: datetime) -> ReplicaFacts | None:
    """The replica after an observation, or None when it changes nothing. An ended replica stays ended:
    late or duplicate reports change nothing."""
    if replica.state in ENDED_REPLICA_STATES:
        return None
    if (replica.state, replica.exit_code, replica.reason) == (
        observed.state,
        observed.exit_code,
        observed.reason,
    ):
        return None
    updated = replace(replica, state=observed.state, exit_code=observed.exit_code, reason=observed.reason)
    if observed.started_at and replica.started_at is None:
        updated = replace(updated, started_at=observed.started_at)
    if observed.state in ENDED_REPLICA_STATES:
        updated = replace(updated, finished_at=observed.finished_at or now)
    return updated


def settle(workload: WorkloadFacts) -> Outcome:
    """A launched workload's status from its replicas."""
    states = [replica.state for replica in workload.replicas]
    if all(state in ENDED_REPLICA_STATES for state in states):
        return _ended(workload)
    failure = replica_failure(workload.replicas)
    if failure and workload.stop_requested is None:
        return Outcome(
            stop=(StopRequest.FAILURE, failure),
            events=(Event("StopRequested", f"stopping the other replicas: {failure}"),),
        )
    running = all(state in (ReplicaState.RUNNING, ReplicaState.SUCCEEDED) for state in states)
    if running and workload.status != S.RUNNING:
        return _to(workload.status, S.RUNNING, None, mark_started=True)
    if not running and workload.status == S.ADMITTED:
        return _to(workload.status, S.STARTING, None)
    return NO_CHANGE


def settle_unlaunched(workload: WorkloadFacts) -> Outcome:
    """A stop asked of a workload the backend was never asked to start: it settles at once."""
    if workload.stop_requested is None:
        return NO_CHANGE
    if workload.stop_requested == StopRequest.PREEMPT:
        return _preempted(workload)
    target = S.CANCELLED if workload.stop_requested == StopRequest.CANCEL else S.FAILED
    return replace(_to(workload.status, target, workload.stop_reason), finished=True)


def launched(status: S) -> Outcome:
    """The backend accepted the start."""
    if status == S.ADMITTED:
        return _to(status, S.STARTING, "launched")
    return NO_CHANGE


def launch_failed(status: S, message: str) -> Outcome:
    if status != S.ADMITTED:
        return NO_CHANGE
    return replace(_to(status, S.FAILED, f"could not start: {message}"), finished=True)


def _ended(workload: WorkloadFacts) -> Outcome:
    request = workload.stop_requested
    if request == StopRequest.PREEMPT:
        return _preempted(workload)
    if request == StopRequest.CANCEL:
        target, reason = S.CANCELLED, workload.stop_reason
    elif all(replica.state == ReplicaState.SUCCEEDED for replica in workload.replicas):
        target, reason = S.SUCCEEDED, "all replicas exited with code 0"
    else:
        target = S.FAILED
        reason = (
            workload.stop_reason if request == StopRequest.FAILURE else replica_failure(workload.replicas)
        )
    return replace(_to(workload.status, target, reason), finished=True)


def _preempted(workload: WorkloadFacts) -> Outcome:
    """Preempted, then back in the queue, in one step (both transitions are recorded)."""
    preempted = _to(workload.status, S.PREEMPTED, workload.stop_reason)
    requeued = _to(S.PREEMPTED, S.PENDING, f"preempted ({workload.stop_reason}); waiting to run again")
    return Outcome(
        status=S.PENDING,
        reason=requeued.reason,
        events=preempted.events + requeued.events,
        requeue=True,
        transitions=preempted.transitions + requeued.transitions,
    )


def _to(current: S, target: S, reason: str | None, *, mark_started: bool = False) -> Outcome:
    check_transition(current, target)
    return Outcome(
        status=target,
        reason=reason,
        events=(Event(target.value.capitalize(), reason or target.value.lower()),),
        mark_started=mark_started,
        transitions=(target,),
    )
