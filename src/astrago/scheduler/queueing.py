"""The order stage: which pending workload the engine considers next.

Three disciplines (`SchedulerConfig.queue`):

* ``fifo`` — submission order (`submitted_seq`), nothing else. For comparisons.
* ``priority`` — higher priority first, then submission order.
* ``fairshare`` (default) — the Kueue entry ordering refined with dominant-resource fair share:
  1. workloads that fit inside their workspace's guarantee before workloads that would borrow (a guarantee
     is a promise; ordering borrowers first would let them take capacity that is reclaimed from them a
     moment later, and the two would preempt each other forever);
  2. higher priority class;
  3. the workspace whose dominant usage relative to its guarantee is lowest (see `QuotaLedger.fair_share`);
  4. older submission.

Fair share is *progressive*: the queue asks the ledger afresh before each pop, so a workspace that just got
a workload admitted drops back behind the others, as in DRF's progressive filling. Within one workspace the
order is always priority, then age."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from enum import StrEnum

from astrago.domain.resources import ResourceRequest
from astrago.scheduler.quota import QuotaLedger, Usage
from astrago.scheduler.types import WorkloadRequest


class QueueDiscipline(StrEnum):
    FIFO = "fifo"
    PRIORITY = "priority"
    FAIRSHARE = "fairshare"


def parse_discipline(name: str) -> QueueDiscipline:
    try:
        return QueueDiscipline(name)
    except ValueError:
        choices = ", ".join(d.value for d in QueueDiscipline)
        raise ValueError(f"unknown queue discipline {name!r}; choose one of {choices}") from None


def _age_key(workload: WorkloadRequest) -> tuple[int, str]:
    return workload.submitted_seq, workload.id


def _priority_key(workload: WorkloadRequest) -> tuple[int, int, str]:
    return -workload.priority, workload.submitted_seq, workload.id


class AdmissionQueue:
    """Pops pending workloads in the configured order. Single use, one cycle."""

    def __init__(
        self,
        pending: Iterable[WorkloadRequest],
        discipline: QueueDiscipline,
        ledger: QuotaLedger,
        demand_of: Callable[[WorkloadRequest], Usage],
    ) -> None:
        self._discipline = discipline
        self._ledger = ledger
        self._demand_of = demand_of
        workloads = list(pending)
        if discipline is QueueDiscipline.FAIRSHARE:
            by_workspace: dict[str, list[WorkloadRequest]] = {}
            for workload in workloads:
                by_workspace.setdefault(workload.workspace, []).append(workload)
            # Each workspace's queue is kept reversed so that popping its head is O(1).
            self._lanes = {
                name: sorted(lane, key=_priority_key, reverse=True) for name, lane in by_workspace.items()
            }
            self._lane_keys: dict[str, tuple[bool, int, tuple[float, float], int, str]] = {}
            self._stale: set[str] = set(self._lanes)
            self._shares: dict[str, tuple[int, tuple[float, float]]] = {}  # workspace -> (version, share)
            self._borrows: dict[tuple[str, int, Usage], bool] = {}
            # workspace -> (ledger version, request, replicas, borrows) of its last head
            self._last_head: dict[str, tuple[int, ResourceRequest, int, bool]] = {}
            self._flat: list[WorkloadRequest] = []
        else:
            key = _age_key if discipline is QueueDiscipline.FIFO else _priority_key
            self._flat = sorted(workloads, key=key, reverse=True)
            self._lanes = {}

    def __len__(self) -> int:
        return len(self._flat) + sum(len(lane) for lane in self._lanes.values())

    def pop(self) -> WorkloadRequest | None:
        if self._discipline is not QueueDiscipline.FAIRSHARE:
            return self._flat.pop() if self._flat else None
        for name in self._stale:
            lane = self._lanes[name]
            if lane:
                self._lane_keys[name] = self._lane_key(name, lane[-1])
            else:
                self._lane_keys.pop(name, None)
        self._stale.clear()
        if not self._lane_keys:
            return None
        best = min(self._lane_keys, key=self._lane_keys.__getitem__)
        # Only the popped workspace's head and usage can change before the next pop: the engine admits at
        # most this one workload, and admissions charge only its own workspace.
        self._stale.add(best)
        return self._lanes[best].pop()

    def _lane_key(
        self, workspace: str, head: WorkloadRequest
    ) -> tuple[bool, int, tuple[float, float], int, str]:
        version = self._ledger.version(workspace)
        last = self._last_head.get(workspace)
        if last is not None and last[0] == version and last[1] is head.resources and last[2] == head.replicas:
            borrows = last[3]  # a long lane of one shape: its heads ask the ledger the same question
        else:
            demand = self._demand_of(head)
            known = self._borrows.get((workspace, version, demand))
            if known is None:
                known = self._borrows[(workspace, version, demand)] = not self._ledger.within_guarantee(
                    workspace, demand
                )
            borrows = known
            self._last_head[workspace] = (version, head.resources, head.replicas, borrows)
        cached = self._shares.get(workspace)
        if cached is None or cached[0] != version:
            cached = self._shares[workspace] = (version, self._ledger.fair_share(workspace))
        return borrows, -head.priority, cached[1], head.submitted_seq, head.id
