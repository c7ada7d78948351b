"""The engine's shortcut for long queues: a waiting workload gets the answer an identical one ahead of it
got (same workspace, request, replicas and priority) when nothing has changed in between. Held to the plain
engine, which runs every stage for every workload, on random snapshots built to repeat shapes: full
decisions (admissions and their placements, preemptions, every reason and queue position) must be equal."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from astrago.domain.resources import ResourceRequest
from astrago.scheduler import engine
from astrago.scheduler.engine import run_cycle, schedule
from astrago.scheduler.placement import get_policy
from astrago.scheduler.state import SchedulingState
from astrago.scheduler.types import (
    Decisions,
    GpuInfo,
    NodeInfo,
    PendingReason,
    Quota,
    RunningWorkload,
    SchedulerConfig,
    Snapshot,
    WorkloadRequest,
)

GPU = 1000
WORKSPACES = ("a", "b", "c")
# A small palette, so that queues repeat shapes as real ones do (thousands of the same job).
REQUESTS = (
    ResourceRequest(cpu_milli=2000, memory_mib=4096, gpus=1),
    ResourceRequest(cpu_milli=2000, memory_mib=4096, gpus=2, gpu_model="A100"),
    ResourceRequest(cpu_milli=2000, memory_mib=4096, gpus=4, gpu_model="H100"),
    ResourceRequest(cpu_milli=1000, memory_mib=2048, gpu_share_milli=500),
    ResourceRequest(cpu_milli=1000, memory_mib=2048, mig_profile="1g.10gb"),
    ResourceRequest(cpu_milli=30_000, memory_mib=8192),  # CPU-bound: short on CPU, not GPUs
    ResourceRequest(cpu_milli=1000, memory_mib=1024, gpus=16),  # never fits any node
)
POLICIES = ("bestfit", "fgd", "astra", "random", "gpupacking")


def _nodes(rng: random.Random) -> tuple[NodeInfo, ...]:
    nodes = []
    for n in range(rng.randint(1, 5)):
        model = rng.choice(["A100", "H100"])
        gpus = tuple(
            GpuInfo(
                g,
                model,
                fenced=f"GPU {g} on node n{n} is fenced" if rng.random() < 0.05 else None,
                held_by_others=rng.random() < 0.05,
            )
            for g in range(rng.choice([0, 2, 4, 8]))
        )
        nodes.append(
            NodeInfo(
                f"n{n}",
                rng.choice([16_000, 32_000, 64_000]),
                128 * 1024,
                gpus,
                cordoned=f"node n{n} is cordoned" if rng.random() < 0.05 else None,
                schedulable=rng.random() > 0.05,
            )
        )
    if rng.random() < 0.5:
        mig = tuple(GpuInfo(g, "A100-80GB", memory_mib=81920, mig_enabled=True) for g in range(2))
        nodes.append(NodeInfo("mig", 32_000, 128 * 1024, mig))
    return tuple(nodes)


def _quotas(rng: random.Random) -> tuple[tuple[str, Quota], ...]:
    quotas = []
    for workspace in WORKSPACES:
        if rng.random() < 0.4:
            continue
        guaranteed = rng.randint(0, 6)
        limit = None if rng.random() < 0.4 else guaranteed + rng.randint(0, 6)
        models = (
            (("h100", rng.randint(0, 2) * GPU, rng.choice([None, 4 * GPU])),) if rng.random() < 0.3 else ()
        )
        cpu_limit = rng.choice([None, None, 40_000])
        quotas.append(
            (
                workspace,
                Quota(
                    gpu_guaranteed_milli=guaranteed * GPU,
                    gpu_limit_milli=None if limit is None else limit * GPU,
                    cpu_limit_milli=cpu_limit,
                    gpu_models=models,
                ),
            )
        )
    return tuple(quotas)


def _workloads(rng: random.Random, prefix: str, count: int, first_seq: int) -> list[WorkloadRequest]:
    kinds = [
        (rng.choice(WORKSPACES), rng.choice(REQUESTS), rng.choice([1, 1, 1, 2]), rng.choice([0, 0, 1, 2]))
        for _ in range(rng.randint(1, 5))
    ]
    workloads = []
    for i in range(count):
        workspace, request, replicas, priority = rng.choice(kinds)
        workloads.append(
            WorkloadRequest(
                id=f"{prefix}{i}",
                workspace=workspace,
                resources=request,
                replicas=replicas,
                priority=priority,
                submitted_seq=first_seq + rng.randint(0, count),  # ties in order are broken by id
                preemptible=rng.random() < 0.8,
            )
        )
    return workloads


def _scenario(seed: int) -> tuple[Snapshot, SchedulerConfig]:
    rng = random.Random(seed)
    nodes = _nodes(rng)
    quotas = _quotas(rng)
    config = SchedulerConfig(
        policy=rng.choice(POLICIES),
        queue=rng.choice(["fifo", "priority", "fairshare"]),
        backfill=rng.random() < 0.7,
        reservation=rng.random() < 0.7,
        preemption=rng.random() < 0.8,
        seed=seed,
    )
    # What runs was placed by the engine itself (so it is consistent); some of it is already stopping.
    first = Snapshot(nodes, (), tuple(_workloads(rng, "r", rng.randint(0, 30), 0)), quotas)
    admitted = schedule(first, SchedulerConfig(policy="bestfit"))
    by_id = {w.id: w for w in first.pending}
    running = tuple(
        RunningWorkload(by_id[a.workload_id], a.placements, started_seq=i, terminating=rng.random() < 0.15)
        for i, a in enumerate(admitted.admit)
    )
    pending = _workloads(rng, "p", rng.randint(1, 120), 1000)
    return Snapshot(nodes, running, tuple(pending), quotas), config


def _cycle(
    snapshot: Snapshot, config: SchedulerConfig, share_answers: bool, explain: bool = True
) -> Decisions:
    state = SchedulingState.from_snapshot(snapshot)
    policy = get_policy(config.policy, seed=config.seed)
    return run_cycle(state, snapshot.pending, config, policy, explain=explain, share_answers=share_answers)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32 - 1), st.booleans())
def test_shared_answers_decide_exactly_as_the_plain_engine(seed: int, explain: bool) -> None:
    snapshot, config = _scenario(seed)

    shared = _cycle(snapshot, config, share_answers=True, explain=explain)
    plain = _cycle(snapshot, config, share_answers=False, explain=explain)

    assert shared.admit == plain.admit
    assert shared.preempt == plain.preempt
    assert list(shared.pending.items()) == list(plain.pending.items())


def test_a_long_queue_of_one_shape_runs_the_stages_a_few_times(monkeypatch: pytest.MonkeyPatch) -> None:
    """10,000 identical workloads behind a full cluster: the first ones take the head's reservation and
    spend the workspace's victim search; the rest repeat the answer without running any stage."""
    nodes = tuple(
        NodeInfo(f"n{i}", 64_000, 256 * 1024, tuple(GpuInfo(g, "A100") for g in range(8))) for i in range(4)
    )
    one_gpu = ResourceRequest(cpu_milli=1000, memory_mib=1024, gpus=1)
    filler = [WorkloadRequest(f"r{i}", "a", one_gpu, submitted_seq=i) for i in range(32)]
    running = schedule(Snapshot(nodes, (), tuple(filler))).admit
    by_id = {w.id: w for w in filler}
    snapshot = Snapshot(
        nodes,
        tuple(RunningWorkload(by_id[a.workload_id], a.placements, i) for i, a in enumerate(running)),
        tuple(WorkloadRequest(f"p{i}", "a", one_gpu, submitted_seq=100 + i) for i in range(10_000)),
    )
    considered = 0
    consider = engine._Cycle._consider

    def counting(self: engine._Cycle, workload: WorkloadRequest) -> object:
        nonlocal considered
        considered += 1
        return consider(self, workload)

    monkeypatch.setattr(engine._Cycle, "_consider", counting)
    decisions = schedule(snapshot)

    assert len(running) == 32
    assert not decisions.admit
    assert [decisions.pending[f"p{i}"].position for i in (0, 1, 9_999)] == [1, 2, 10_000]
    assert decisions.pending["p0"].code == "no_capacity"  # first in line, nodes held for it
    assert decisions.pending["p9999"] == PendingReason(
        decisions.pending["p1"].code, decisions.pending["p1"].message, 10_000
    )
    assert considered <= 3
