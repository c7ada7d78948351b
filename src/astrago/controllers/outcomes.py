"""Between workload rows and the pure status rules of `astrago.domain.lifecycle`: read a row's facts, and
write an outcome back onto the row (status, reason, times, events, placements)."""

from __future__ import annotations

from datetime import datetime

from astrago.domain.enums import ReplicaState, WorkloadStatus
from astrago.domain.lifecycle import Outcome, ReplicaFacts, StopRequest, WorkloadFacts
from astrago.store.models import Replica, Workload
from astrago.store.repositories import EventRepository


def replica_facts(replica: Replica) -> ReplicaFacts:
    return ReplicaFacts(
        index=replica.index,
        state=ReplicaState(replica.state) if replica.state else None,
        exit_code=replica.exit_code,
        reason=replica.reason,
        started_at=replica.started_at,
        finished_at=replica.finished_at,
    )


def workload_facts(workload: Workload, with_replicas: bool = True) -> WorkloadFacts:
    return WorkloadFacts(
        status=WorkloadStatus(workload.status),
        replicas=tuple(replica_facts(r) for r in workload.replica_rows) if with_replicas else (),
        stop_requested=StopRequest(workload.stop_requested) if workload.stop_requested else None,
        stop_reason=workload.stop_reason,
    )


def write_replica(row: Replica, facts: ReplicaFacts) -> None:
    row.state = facts.state.value if facts.state else None
    row.exit_code = facts.exit_code
    row.reason = facts.reason
    row.started_at = facts.started_at
    row.finished_at = facts.finished_at


def write_outcome(workload: Workload, outcome: Outcome, events: EventRepository, now: datetime) -> None:
    for event in outcome.events:
        events.add(workload.id, event.type, event.reason)
    if outcome.stop is not None:
        workload.stop_requested, workload.stop_reason = outcome.stop[0].value, outcome.stop[1]
    if outcome.status is None:
        return
    workload.status = outcome.status.value
    workload.reason = outcome.reason
    if outcome.mark_started:
        workload.started_at = workload.started_at or now
    if outcome.requeue:
        _requeue(workload)
    elif outcome.finished:
        workload.finished_at = now
        workload.pending_code = None
        workload.queue_position = None


def _requeue(workload: Workload) -> None:
    """Back in the queue: its placements and launch go; it keeps its place (`seq`) in the queue."""
    workload.replica_rows.clear()
    workload.launched = False
    workload.admitted_at = None
    workload.admitted_seq = None
    workload.stop_requested = None
    workload.stop_reason = None
    workload.pending_code = "preempted"
