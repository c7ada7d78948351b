"""The preempt stage: the smallest set of running workloads whose removal lets a pending one start.

Who may be preempted (never a workload marked non-preemptible, never one already terminating):

* in **another workspace**, only *borrowed* workloads — their workspace stays at or above its guarantee
  without them (`QuotaLedger.is_borrowed`), so guaranteed usage is never taken — and only when the
  preemptor either reclaims its own guarantee (it fits inside it: any priority of borrower yields) or has a
  strictly higher priority than the victim;
* in the **preemptor's own workspace**, workloads of strictly lower priority.

Borrowing is re-checked while victims are picked: once a workspace is back at its guarantee, the rest of
its workloads are safe.

How victims are picked: legal candidates in order — borrowed first, then lower priority, then youngest —
form a sequence; the shortest prefix of it that lets the preemptor fit (quota and placement) is found by
bisection; then victims are given back — all those on nodes it will not use at once, then each of the
rest, newest first — whenever the preemptor still fits without removing them (Kueue's minimisation). The
result is irreducible: no victim can be spared. If the preemptor does not fit even with every legal
candidate removed, nobody is preempted."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from astrago.scheduler.cluster import ClusterState
from astrago.scheduler.quota import QuotaLedger, Usage
from astrago.scheduler.types import ReplicaPlacement, RunningWorkload, WorkloadRequest

FitCheck = Callable[[ClusterState, QuotaLedger], tuple[ReplicaPlacement, ...] | None]
UsageOf = Callable[[RunningWorkload], Usage]


@dataclass(frozen=True, slots=True)
class VictimPlan:
    victims: tuple[RunningWorkload, ...]
    placements: tuple[ReplicaPlacement, ...]  # where the preemptor will go once the victims have stopped

    def reason_for(self, victim: RunningWorkload, preemptor: WorkloadRequest, reclaim: bool) -> str:
        if victim.request.workspace != preemptor.workspace:
            if reclaim:
                return (
                    f"workspace {victim.request.workspace} is borrowing capacity that workspace "
                    f"{preemptor.workspace} needs for its guarantee (workload {preemptor.id})"
                )
            return (
                f"borrowed capacity is needed by higher-priority workload {preemptor.id} "
                f"(priority {preemptor.priority} > {victim.request.priority})"
            )
        return (
            f"higher-priority workload {preemptor.id} of the same workspace needs the room "
            f"(priority {preemptor.priority} > {victim.request.priority})"
        )


def may_preempt(
    preemptor: WorkloadRequest,
    victim: RunningWorkload,
    reclaim: bool,
    ledger: QuotaLedger,
    usage_of: UsageOf,
) -> bool:
    """Is `victim` a legal victim for `preemptor`, given current usage?"""
    if not victim.request.preemptible or victim.terminating:
        return False
    if victim.request.workspace == preemptor.workspace:
        return victim.request.priority < preemptor.priority
    if not (reclaim or victim.request.priority < preemptor.priority):
        return False
    return ledger.is_borrowed(victim.request.workspace, usage_of(victim))


def victim_order(preemptor: WorkloadRequest, victim: RunningWorkload) -> tuple[int, int, int, str]:
    """Borrowed (another workspace's, which may only be taken when it borrows) first, then lower priority,
    then the youngest."""
    own = victim.request.workspace == preemptor.workspace
    return int(own), victim.request.priority, -victim.started_seq, victim.request.id


def find_victims(
    preemptor: WorkloadRequest,
    candidates: Sequence[RunningWorkload],
    cluster: ClusterState,
    ledger: QuotaLedger,
    reclaim: bool,
    usage_of: UsageOf,
    fits: FitCheck,
) -> VictimPlan | None:
    """The minimal victim set, or None. `ledger` is a scratch copy; `cluster` is used in place and left as
    it was (placement policies keep incremental caches per cluster, which a copy would throw away)."""
    sequence = _eligible_in_order(preemptor, candidates, ledger, reclaim, usage_of)
    if not sequence:
        return None
    removed = _Removal(cluster, ledger, usage_of)
    try:
        removed.to_prefix(sequence, len(sequence))
        if fits(cluster, ledger) is None:
            return None  # not even every legal victim together makes room
        # Fitting only gets easier as the prefix grows: bisect for the shortest prefix that fits.
        low, high = 1, len(sequence)
        while low < high:
            middle = (low + high) // 2
            removed.to_prefix(sequence, middle)
            if fits(cluster, ledger) is None:
                low = middle + 1
            else:
                high = middle
        removed.to_prefix(sequence, high)
        placements = fits(cluster, ledger)
        assert placements is not None
        _give_back_unneeded(preemptor, removed, placements, fits)
        final = fits(cluster, ledger)
        assert final is not None
        kept = sorted(removed.victims, key=lambda c: victim_order(preemptor, c))
        return VictimPlan(tuple(kept), final)
    finally:
        removed.restore_all()


def _eligible_in_order(
    preemptor: WorkloadRequest,
    candidates: Sequence[RunningWorkload],
    ledger: QuotaLedger,
    reclaim: bool,
    usage_of: UsageOf,
) -> list[RunningWorkload]:
    """Legal victims in victim order; a workspace's workloads stop being legal once taking the earlier
    ones has brought it back to its guarantee."""
    scratch = ledger.copy()
    sequence = []
    for candidate in sorted(candidates, key=lambda c: victim_order(preemptor, c)):
        if may_preempt(preemptor, candidate, reclaim, scratch, usage_of):
            scratch.remove(candidate.request.workspace, usage_of(candidate))
            sequence.append(candidate)
    return sequence


def _give_back_unneeded(
    preemptor: WorkloadRequest,
    removed: _Removal,
    placements: tuple[ReplicaPlacement, ...],
    fits: FitCheck,
) -> None:
    """Minimise: victims of other workspaces on nodes the preemptor will not use are given back at once
    (they free neither its nodes nor its quota); then each remaining victim, newest choice first, if the
    preemptor still fits without removing it."""
    nodes = {p.node for p in placements}
    elsewhere = [
        v
        for v in removed.victims
        if v.request.workspace != preemptor.workspace and not any(p.node in nodes for p in v.placements)
    ]
    for victim in elsewhere:
        removed.restore(victim)
    if fits(removed.cluster, removed.ledger) is None:  # a policy may prefer other nodes now: undo
        for victim in elsewhere:
            removed.remove(victim)
    for victim in reversed(list(removed.victims)):
        removed.restore(victim)
        if fits(removed.cluster, removed.ledger) is None:
            removed.remove(victim)


class _Removal:
    """Victims currently taken off the cluster and the ledger, in the order they were taken."""

    def __init__(self, cluster: ClusterState, ledger: QuotaLedger, usage_of: UsageOf) -> None:
        self.cluster = cluster
        self.ledger = ledger
        self.usage_of = usage_of
        self.victims: list[RunningWorkload] = []

    def remove(self, victim: RunningWorkload) -> None:
        for placement in victim.placements:
            self.cluster.release(placement)
        self.ledger.remove(victim.request.workspace, self.usage_of(victim))
        self.victims.append(victim)

    def restore(self, victim: RunningWorkload) -> None:
        for placement in victim.placements:
            self.cluster.apply(placement)
        self.ledger.add(victim.request.workspace, self.usage_of(victim))
        # By identity: dataclass equality would compare every placement of every victim.
        del self.victims[next(i for i, v in enumerate(self.victims) if v is victim)]

    def to_prefix(self, sequence: Sequence[RunningWorkload], count: int) -> None:
        """Make exactly the first `count` of `sequence` the removed set (only prefixes are ever used)."""
        while len(self.victims) > count:
            self.restore(self.victims[-1])
        while len(self.victims) < count:
            self.remove(sequence[len(self.victims)])

    def restore_all(self) -> None:
        while self.victims:
            self.restore(self.victims[-1])
