"""The scheduling engine: a pure function from a Snapshot to Decisions.

One cycle walks the pending queue once, in the order of `astrago.scheduler.queueing`, and for each
workload runs these stages (docs/architecture.md):

1. **validate** — malformed (`invalid`), bigger than any node or the whole cluster (`no_fit`), bigger than
   its workspace's limit (`quota_limit`, for ever). Memoised per request shape.
2. **quota** — the workspace's limits now; per-GPU-model limits narrow the models it may land on.
3. **place** — all replicas or none, on as few nodes as possible, with the configured placement policy, on
   nodes that are not reserved for a workload ahead in the queue.
4. **preempt** — when it does not fit, the minimal set of legal victims (`astrago.scheduler.preemption`);
   the victims are reported and the workload waits as `preempting` with the nodes it will use held for it.
5. **reserve** — the first workload that is blocked by capacity (not by quota) gets the nodes it will fit on
   once what runs there ends; later work may backfill only elsewhere, so it cannot delay the head. With
   backfill off nothing passes the head; with reservation off anything that fits goes (the head may starve).
6. **explain** — every workload left pending gets a reason and its queue position (1 = next).

A workload that waits is usually one of thousands of the same kind behind it. When one with the same
workspace, request, replica count and priority has already been told to wait and nothing the stages read
has changed since (no admission, reservation, preemption or claim: `_Cycle._version`), it gets the same
answer without running the stages again (`share_answers`); a randomized test holds this to the plain
engine's decisions.

The cycle mutates a `SchedulingState`; `schedule()` builds a fresh one per call, the replay simulator keeps
one alive across events (`run_cycle`)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace

import numpy as np

from astrago.domain.resources import ResourceParseError, ResourceRequest
from astrago.scheduler.cluster import WHOLE_GPU_MILLI, ClusterState, RequestShape
from astrago.scheduler.explain import (
    ReasonCode,
    format_cpu,
    format_gpus,
    format_memory,
    never_fits_message,
    pending_reason,
)
from astrago.scheduler.placement import PlacementPolicy, get_policy, place
from astrago.scheduler.preemption import VictimPlan, find_victims
from astrago.scheduler.queueing import AdmissionQueue, parse_discipline
from astrago.scheduler.quota import QuotaLedger, Usage
from astrago.scheduler.state import SchedulingState, ShapeKey, demand_of
from astrago.scheduler.types import (
    Admission,
    Decisions,
    Preemption,
    ReplicaPlacement,
    SchedulerConfig,
    Snapshot,
    WorkloadRequest,
)

DEFAULT_CONFIG = SchedulerConfig()


def schedule(snapshot: Snapshot, config: SchedulerConfig = DEFAULT_CONFIG) -> Decisions:
    """Decide what to admit, whom to preempt and why everything else waits. Deterministic."""
    state = SchedulingState.from_snapshot(snapshot)
    return run_cycle(state, snapshot.pending, config, get_policy(config.policy, seed=config.seed))


def run_cycle(
    state: SchedulingState,
    pending: Sequence[WorkloadRequest],
    config: SchedulerConfig,
    policy: PlacementPolicy,
    explain: bool = True,
    share_answers: bool = True,
) -> Decisions:
    """One pass over the queue. Admissions are applied to `state`; victims are marked terminating there
    (they keep their resources until the caller reports them finished). With `explain` off, waiting for
    capacity is reported without a message (the simulator needs only the codes). With `share_answers`
    off every workload runs every stage (the reference the shortcut is tested against)."""
    return _Cycle(state, config, policy, explain, share_answers).run(pending)


@dataclass(frozen=True, slots=True)
class _Wait:
    """A workload that stays pending, before its queue position is known. A capacity message is worded
    at the end of the cycle, from the final free capacity (`shortfall`: the request it is about)."""

    code: ReasonCode
    message: str
    shortfall: ShapeKey | None = None


_AnswerKey = tuple[str, ResourceRequest, int, int]  # workspace, request, replicas, priority


class _Cycle:
    def __init__(
        self,
        state: SchedulingState,
        config: SchedulerConfig,
        policy: PlacementPolicy,
        explain: bool,
        share_answers: bool = True,
    ) -> None:
        self.state = state
        self.explain = explain
        self.share_answers = share_answers
        self.config = config
        self.policy = policy
        self.discipline = parse_discipline(config.queue)
        self.cluster = state.cluster
        self._schedulable_before = state.cluster.schedulable.copy()
        self.decisions = Decisions()
        self._failed_shapes: set[ShapeKey] = set()
        self._fits_unreserved: dict[ShapeKey, bool] = {}
        self._unfit_after_terminations: set[ShapeKey] = set()
        self._preemption_tried: set[str] = set()
        self._admitted: set[str] = set()
        self._reserved_any = False
        self._holders: dict[str, list[str]] = {}  # workload id -> nodes held for it, in queue order
        self._head: str | None = None  # the first workload blocked by capacity, whose nodes are held
        self._claimed_terminating: set[str] = set()
        # Bumped by everything a workload's stages change that a later workload's stages read: admissions
        # (free capacity, usage), reservations, the head, preemptions, claims on terminating workloads,
        # victim searches spent. Memos of facts (`_failed_shapes`, ...) do not count: they only repeat
        # what the stages would find again. Answers are shared between workloads only within one version.
        self._version = 0

    # ------------------------------------------------------------------------------------------ driver
    def run(self, pending: Sequence[WorkloadRequest]) -> Decisions:
        queue = AdmissionQueue(pending, self.discipline, self.state.ledger, demand_of)
        # Two parallel lists rather than a tuple per workload: fewer objects for the garbage collector.
        waiting_ids: list[str] = []
        waits: list[_Wait] = []
        # An answer depends on the workload only through its workspace, request, replicas and priority
        # (its id appears only in what it changes: admissions, reservations, preemptions).
        answers: dict[_AnswerKey, tuple[int, _Wait]] = {}
        try:
            while (workload := queue.pop()) is not None:
                key = (workload.workspace, workload.resources, workload.replicas, workload.priority)
                known = answers.get(key)
                if known is not None and known[0] == self._version:
                    waiting_ids.append(workload.id)
                    waits.append(known[1])
                    continue
                version = self._version
                wait = self._consider(workload)
                if wait is not None:
                    waiting_ids.append(workload.id)
                    waits.append(wait)
                    if self.share_answers and self._version == version:
                        answers[key] = (version, wait)
        finally:
            self.cluster.schedulable[:] = self._schedulable_before
        worded: dict[_Wait, tuple[str, str]] = {}  # (code, message) of each distinct wait, worded once
        messages: dict[ShapeKey, str] = {}
        reasons = self.decisions.pending
        last: _Wait | None = None  # shared answers come in runs: the same wait as the previous workload's
        code = message = ""
        for position, (workload_id, wait) in enumerate(zip(waiting_ids, waits, strict=True), start=1):
            if wait is not last:
                last = wait
                if wait not in worded:
                    message = wait.message
                    if wait.shortfall is not None and self.explain:
                        if wait.shortfall not in messages:
                            messages[wait.shortfall] = self._capacity_message(*wait.shortfall)
                        message = messages[wait.shortfall]
                    worded[wait] = (wait.code.value, message)
                code, message = worded[wait]
            reasons[workload_id] = pending_reason(code, message, position)
        return self.decisions

    def _consider(self, workload: WorkloadRequest) -> _Wait | None:
        """Admit the workload (None) or say why it waits."""
        demand = demand_of(workload)
        problem = self._validate(workload, demand)
        if problem is not None:
            return problem
        request = workload.resources
        limit_problem = self.state.ledger.limit_problem(workload.workspace, demand)
        if limit_problem is None:
            if self._head is not None and not self.config.backfill and self.config.reservation:
                return _Wait(
                    ReasonCode.RESERVED,
                    f"waiting behind {self._head}, which is first in line (strict order: backfill is off)",
                )
            narrowed = self._within_model_limits(workload, demand)
            if isinstance(narrowed, _Wait):
                return narrowed
            request = narrowed
            placements = self._place_available(request, workload.replicas)
            if placements is not None:
                self._admit(workload, placements)
                return None
        waiting_for_stop = self._fits_after_terminations(workload, request)
        if waiting_for_stop is not None:
            return waiting_for_stop
        if self.config.preemption:
            preempting = self._preempt(workload, request, demand, quota_bound=limit_problem is not None)
            if preempting is not None:
                return preempting
        if limit_problem is not None:
            return _Wait(ReasonCode.QUOTA_LIMIT, limit_problem)
        return self._blocked_by_capacity(workload, request)

    # --------------------------------------------------------------------------------------- validate
    def _validate(self, workload: WorkloadRequest, demand: Usage) -> _Wait | None:
        key = (workload.resources, workload.replicas)
        never = self.state.never_fits
        if key not in never:
            found = self._validate_shape(workload.resources, workload.replicas)
            never[key] = None if found is None else (found.code.value, found.message)
        problem = never[key]
        if problem is not None:
            return _Wait(ReasonCode(problem[0]), problem[1])
        permanent = self.state.ledger.permanent_limit_problem(workload.workspace, demand)
        if permanent is not None:
            return _Wait(ReasonCode.QUOTA_LIMIT, permanent)
        return None

    def _validate_shape(self, request: ResourceRequest, replicas: int) -> _Wait | None:
        if replicas < 1:
            return _Wait(ReasonCode.INVALID, f"a workload needs at least one replica, not {replicas}")
        try:
            request.validate()
        except ResourceParseError as error:
            return _Wait(ReasonCode.INVALID, str(error))
        empty = self.state.empty
        if not empty.can_ever_fit(request):
            return _Wait(
                ReasonCode.NO_FIT,
                f"no node could ever hold one replica: {never_fits_message(empty, request)}",
            )
        if replicas > 1 and place_gang(empty, request, replicas, self.policy) is None:
            return _Wait(
                ReasonCode.NO_FIT,
                f"the cluster cannot hold all {replicas} replicas at once, even when it is empty",
            )
        return None

    def _within_model_limits(self, workload: WorkloadRequest, demand: Usage) -> ResourceRequest | _Wait:
        """Restrict the request to GPU models whose per-model limit still has room for it."""
        ledger, request = self.state.ledger, workload.resources
        if demand.gpu_milli == 0 or not ledger.quota(workload.workspace).gpu_models:
            return request
        models = self._candidate_models(request)
        allowed = ledger.models_within_limit(workload.workspace, models, demand.gpu_milli)
        if not allowed:
            return _Wait(
                ReasonCode.QUOTA_LIMIT,
                ledger.model_limit_message(workload.workspace, models, demand.gpu_milli),
            )
        if len(allowed) == len(models):
            return request
        return replace(request, gpu_model="|".join(allowed))

    def _candidate_models(self, request: ResourceRequest) -> list[str]:
        if request.gpu_model:
            return sorted({m.strip().lower() for m in request.gpu_model.split("|") if m.strip()})
        return sorted(self.state.gpu_models)

    # ------------------------------------------------------------------------------------------ place
    def _place_available(
        self, request: ResourceRequest, replicas: int
    ) -> tuple[ReplicaPlacement, ...] | None:
        key = (request, replicas)
        if key in self._failed_shapes or key in self.state.unfit_now:
            return None  # nothing is freed within a cycle: what failed once fails again
        placements = place_gang(self.cluster, request, replicas, self.policy)
        if placements is None:
            self._failed_shapes.add(key)
            if not self._reserved_any:
                self.state.unfit_now.add(key)
        return placements

    def _admit(self, workload: WorkloadRequest, placements: tuple[ReplicaPlacement, ...]) -> None:
        self._version += 1
        self.state.admit(workload, placements)
        self._admitted.add(workload.id)
        self.decisions.admit.append(Admission(workload.id, placements))

    def _reserve(self, nodes: Sequence[str], holder: str) -> None:
        self._version += 1
        for name in nodes:
            self.cluster.schedulable[self.cluster.node_index[name]] = False
            self._holders.setdefault(holder, []).append(name)
        self._reserved_any = True

    def _fits_ignoring_reservations(self, request: ResourceRequest, replicas: int) -> bool:
        """Would it fit the free capacity if nothing were held for others? (Memoised like placement
        failures: within a cycle the answer can only turn from yes to no, and a stale yes only words the
        reason differently.)"""
        key = (request, replicas)
        if key in self.state.unfit_now:
            return False
        if key not in self._fits_unreserved:
            held = self.cluster.schedulable.copy()
            self.cluster.schedulable[:] = self._schedulable_before
            try:
                fits = place_gang(self.cluster, request, replicas, self.policy) is not None
            finally:
                self.cluster.schedulable[:] = held
            self._fits_unreserved[key] = fits
            if not fits:
                self.state.unfit_now.add(key)
        return self._fits_unreserved[key]

    # ---------------------------------------------------------------------------------------- preempt
    def _fits_after_terminations(self, workload: WorkloadRequest, request: ResourceRequest) -> _Wait | None:
        """A workload that fits once already-terminating workloads are gone waits for them and picks no new
        victims; the nodes it will use are held for it."""
        unclaimed = [
            self.state.running[wid]
            for wid in sorted(self.state.terminating - self._claimed_terminating)
            if wid in self.state.running
        ]
        key = (request, workload.replicas)
        if not unclaimed or key in self._unfit_after_terminations:
            return None
        ledger = self.state.ledger.copy()
        for victim in unclaimed:
            ledger.remove(victim.request.workspace, self.state.usage(victim))
        if ledger.limit_problem(workload.workspace, demand_of(workload)) is not None:
            return None
        with _released(self.cluster, [p for victim in unclaimed for p in victim.placements]):
            placements = place_gang(self.cluster, request, workload.replicas, self.policy)
        if placements is None:
            # Claims only shrink what is unclaimed within a cycle: a shape that does not fit stays so.
            self._unfit_after_terminations.add(key)
            return None
        nodes = sorted({p.node for p in placements})
        awaited = [v.request.id for v in unclaimed if any(p.node in nodes for p in v.placements)]
        self._claimed_terminating.update(awaited)
        self._version += 1
        self._reserve(nodes, workload.id)
        return _Wait(
            ReasonCode.PREEMPTING,
            f"waiting for {_count(len(awaited), 'workload')} to stop on {', '.join(nodes)} "
            f"({', '.join(awaited)}); the room is held for it",
        )

    def _preempt(
        self, workload: WorkloadRequest, request: ResourceRequest, demand: Usage, quota_bound: bool
    ) -> _Wait | None:
        """Like Kueue, which only lets queue heads preempt, each workspace gets one victim search per cycle:
        its first workload that does not fit (its lane is ordered by priority, so the most urgent)."""
        if workload.workspace in self._preemption_tried:
            return None
        self._preemption_tried.add(workload.workspace)
        self._version += 1
        ledger = self.state.ledger
        reclaim = (
            not quota_bound
            and ledger.governs(workload.workspace, demand)
            and ledger.within_guarantee(
                workload.workspace, demand, self._candidate_models(request) if demand.gpu_milli else ()
            )
        )
        by_workspace = self.state.by_workspace
        candidates = [
            running
            for running in by_workspace.get(workload.workspace, {}).values()
            if running.request.priority < workload.priority
        ]
        if not quota_bound:
            for workspace, workloads in by_workspace.items():
                if workspace != workload.workspace and ledger.over_guarantee(workspace):
                    candidates.extend(workloads.values())
        candidates = [
            c
            for c in candidates
            if c.request.preemptible
            and c.request.id not in self.state.terminating
            and c.request.id not in self._admitted  # admitted this cycle: not started, not a victim
        ]
        if not candidates:
            return None

        def fits(cluster: ClusterState, scratch_ledger: QuotaLedger) -> tuple[ReplicaPlacement, ...] | None:
            if scratch_ledger.limit_problem(workload.workspace, demand) is not None:
                return None
            return place_gang(cluster, request, workload.replicas, self.policy)

        usage = self.state.usage
        plan = find_victims(workload, candidates, self.cluster, ledger.copy(), reclaim, usage, fits)
        if plan is None:
            return None
        return self._start_preemption(workload, plan, reclaim)

    def _start_preemption(self, workload: WorkloadRequest, plan: VictimPlan, reclaim: bool) -> _Wait:
        for victim in plan.victims:
            victim_id = victim.request.id
            self.decisions.preempt.append(
                Preemption(victim_id, plan.reason_for(victim, workload, reclaim), for_workload_id=workload.id)
            )
            self.state.mark_terminating(victim_id)
            self._claimed_terminating.add(victim_id)
            self._version += 1
        nodes = sorted({p.node for p in plan.placements})
        self._reserve(nodes, workload.id)
        victims = ", ".join(v.request.id for v in plan.victims)
        return _Wait(
            ReasonCode.PREEMPTING,
            f"preempting {_count(len(plan.victims), 'workload')} ({victims}) to make room on "
            f"{', '.join(nodes)}; it starts once they have stopped",
        )

    # ------------------------------------------------------------------------------- reserve / explain
    def _blocked_by_capacity(self, workload: WorkloadRequest, request: ResourceRequest) -> _Wait:
        replicas = workload.replicas
        if self._reserved_any and self._fits_ignoring_reservations(request, replicas):
            holders = "; ".join(f"{holder} ({', '.join(nodes)})" for holder, nodes in self._holders.items())
            return _Wait(
                ReasonCode.RESERVED,
                f"it would fit now, but only on capacity held for workloads ahead of it in the queue: "
                f"{holders}",
            )
        if self._head is None and self.config.reservation:
            nodes = self._reservation_nodes(request, replicas)
            if nodes:
                short = self._capacity_message(request, replicas)  # before the reservation changes the view
                self._head = workload.id
                self._version += 1
                self._reserve(nodes, workload.id)
                return _Wait(
                    ReasonCode.NO_CAPACITY,
                    f"first in line for capacity: it needs {self._describe(request, replicas)}; {short}; "
                    f"{', '.join(nodes)} {'is' if len(nodes) == 1 else 'are'} held for it so that "
                    f"smaller work cannot take the room as it frees up",
                )
        return _Wait(ReasonCode.NO_CAPACITY, "", shortfall=(request, replicas))

    def _reservation_nodes(self, request: ResourceRequest, replicas: int) -> tuple[str, ...]:
        """The nodes the head will run on once work there ends. Without run-time estimates the best guess
        for "frees up first" is "has the most free already": walk usable nodes in that order and take the
        first ones that, emptied, hold all replicas."""
        cluster = self.cluster
        shape = RequestShape.of(request)
        usable = np.flatnonzero(cluster.schedulable)
        if shape.gpus:
            free = np.where(cluster.gpu_allowed(shape.models), cluster.gpu_free, 0).sum(axis=1)
        else:
            free = cluster.cpu_free
        order = usable[np.lexsort((usable, -cluster.memory_free[usable], -free[usable]))]
        when_empty = replicas_per_node(self.state.empty, request)
        chosen: list[str] = []
        held = 0
        for index in order:
            if when_empty[index] > 0:
                chosen.append(cluster.node_names[int(index)])
                held += int(when_empty[index])
                if held >= replicas:
                    return tuple(sorted(chosen))
        return ()

    def _capacity_message(self, request: ResourceRequest, replicas: int) -> str:
        summary = self.cluster.free_summary(request)
        if replicas > 1 and summary == "a node has room now":
            return f"the free capacity cannot hold all {replicas} replicas at once"
        if summary == "a node has room now":
            return "the room it could use is held for workloads ahead of it"
        return summary

    @staticmethod
    def _describe(request: ResourceRequest, replicas: int) -> str:
        host = f"{format_cpu(request.cpu_milli)} and {format_memory(request.memory_mib)} memory"
        if request.mig_profile:
            each = f"a {request.mig_profile} MIG slice, {host}"
        elif request.gpu_milli:
            each = f"{format_gpus(request.gpu_milli)}, {host}"
        else:
            each = host
        return f"{replicas} × ({each})" if replicas > 1 else each


def place_gang(
    cluster: ClusterState, request: ResourceRequest, replicas: int, policy: PlacementPolicy
) -> tuple[ReplicaPlacement, ...] | None:
    """All replicas or none, leaving `cluster` as it was. Multi-replica gangs go to as few nodes as possible:
    the nodes that can hold the most replicas are offered first."""
    if replicas == 1:
        single = place(cluster, request, policy)
        return None if single is None else (single,)
    preferred = _fewest_nodes(cluster, request, replicas)
    if preferred is None:
        return None
    placed: list[ReplicaPlacement] = []
    try:
        for _ in range(replicas):
            placement = place(cluster, request, policy, prefer_nodes=preferred)
            if placement is None:
                return None
            cluster.apply(placement)
            placed.append(placement)
        return tuple(placed)
    finally:
        for placement in reversed(placed):
            cluster.release(placement)


def _fewest_nodes(cluster: ClusterState, request: ResourceRequest, replicas: int) -> tuple[str, ...] | None:
    """The smallest set of nodes whose free room holds `replicas` replicas (largest holders first), or None
    when even all of them together cannot."""
    per_node = replicas_per_node(cluster, request)
    order = np.lexsort((np.arange(per_node.shape[0]), -per_node))
    chosen: list[str] = []
    total = 0
    for index in order:
        if per_node[index] <= 0:
            break
        chosen.append(cluster.node_names[int(index)])
        total += int(per_node[index])
        if total >= replicas:
            return tuple(chosen)
    return None


def replicas_per_node(cluster: ClusterState, request: ResourceRequest) -> np.ndarray:
    """How many replicas of `request` each node could take now (an upper bound for MIG)."""
    shape = RequestShape.of(request)
    hosts = cluster.schedulable
    by_cpu = cluster.cpu_free // shape.cpu_milli if shape.cpu_milli else np.full(cluster.size, 1 << 30)
    by_memory = (
        cluster.memory_free // shape.memory_mib if shape.memory_mib else np.full(cluster.size, 1 << 30)
    )
    limit = np.minimum(by_cpu, by_memory)
    if shape.kind == "cpu":
        return np.where(hosts, limit, 0)
    allowed = cluster.gpu_allowed(shape.models)
    if shape.kind == "whole":
        by_gpu = (allowed & (cluster.gpu_free == WHOLE_GPU_MILLI)).sum(axis=1) // shape.gpus
    elif shape.kind == "share":
        by_gpu = np.where(allowed, cluster.gpu_free // shape.gpu_milli, 0).sum(axis=1)
    else:
        usable = cluster.gpu_mig & cluster.gpu_present & ~cluster.gpu_fenced
        by_gpu = (usable & (cluster.gpu_free > 0)).sum(axis=1) * 7
    return np.where(hosts, np.minimum(limit, by_gpu), 0)


@contextmanager
def _released(cluster: ClusterState, placements: Sequence[ReplicaPlacement]) -> Iterator[None]:
    """Temporarily give back `placements` (in place: copying would discard the policies' caches)."""
    done: list[ReplicaPlacement] = []
    try:
        for placement in placements:
            cluster.release(placement)
            done.append(placement)
        yield
    finally:
        for placement in reversed(done):
            cluster.apply(placement)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


__all__ = ["DEFAULT_CONFIG", "place_gang", "replicas_per_node", "run_cycle", "schedule"]
