"""The preempt stage: the smallest set of running workloads whose removal lets a pending one start.

Who may be preempted (never a workload marked non-preemptible, never one already terminating):

* in **another workspace**, only workloads of a workspace that is *borrowing* (above its guarantee on a
  resource the workload uses) — guaranteed usage is never taken — and only when the preemptor either
  reclaims its own guarantee (it fits inside it: any priority of borrower yields) or has a strictly higher
  priority than the victim;
* in the **preemptor's own workspace**, workloads of strictly lower priority.

Borrowing is re-checked while victims are picked: once a workspace is back at its guarantee, the rest of
its workloads are safe.

How victims are picked: candidates in order — borrowed first, then lower priority, then youngest — are
removed one by one until the preemptor fits (quota and placement); then every victim is given back in
reverse order if the preemptor still fits without removing it (Kueue's minimisation). The result is
irreducible: no victim can be spared. If the preemptor does not fit even with every candidate removed,
nobody is preempted."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from astrago.scheduler.cluster import ClusterState
from astrago.scheduler.quota import QuotaLedger, Usage
from astrago.scheduler.types import ReplicaPlacement, RunningWorkload, WorkloadRequest

FitCheck = Callable[[ClusterState, QuotaLedger], tuple[ReplicaPlacement, ...] | None]
UsageOf = Callable[[Sequence[ReplicaPlacement]], Usage]


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
    return ledger.is_borrowing(victim.request.workspace, usage_of(victim.placements))


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
    """The minimal victim set, or None. `cluster` and `ledger` are scratch copies and are changed."""
    ordered = sorted(
        (c for c in candidates if may_preempt(preemptor, c, reclaim, ledger, usage_of)),
        key=lambda c: victim_order(preemptor, c),
    )
    chosen: list[RunningWorkload] = []
    placements: tuple[ReplicaPlacement, ...] | None = None
    for candidate in ordered:
        # Removing earlier victims may have brought this one's workspace back to its guarantee.
        if not may_preempt(preemptor, candidate, reclaim, ledger, usage_of):
            continue
        _remove(candidate, cluster, ledger, usage_of)
        chosen.append(candidate)
        placements = fits(cluster, ledger)
        if placements is not None:
            break
    if placements is None:
        return None
    # Minimise: give back each victim, newest choice first (except the one that made it fit), if the
    # preemptor still fits without removing it.
    kept: list[RunningWorkload] = [chosen[-1]]
    for victim in reversed(chosen[:-1]):
        _restore(victim, cluster, ledger, usage_of)
        still = fits(cluster, ledger)
        if still is None:
            _remove(victim, cluster, ledger, usage_of)
            kept.append(victim)
        else:
            placements = still
    final = fits(cluster, ledger)
    if final is None:  # cannot happen: the last state checked fitted
        return None
    kept.sort(key=lambda c: victim_order(preemptor, c))
    return VictimPlan(tuple(kept), final)


def _remove(victim: RunningWorkload, cluster: ClusterState, ledger: QuotaLedger, usage_of: UsageOf) -> None:
    for placement in victim.placements:
        cluster.release(placement)
    ledger.remove(victim.request.workspace, usage_of(victim.placements))


def _restore(victim: RunningWorkload, cluster: ClusterState, ledger: QuotaLedger, usage_of: UsageOf) -> None:
    for placement in victim.placements:
        cluster.apply(placement)
    ledger.add(victim.request.workspace, usage_of(victim.placements))
