"""Properties of `schedule()` on random clusters, workloads and quotas (hypothesis).

Each example runs two cycles: the first admits a random workload onto an empty cluster (so what runs is
something the engine itself placed), the second schedules more work against it."""

from __future__ import annotations

from collections import defaultdict

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from astrago.domain.resources import ResourceRequest
from astrago.scheduler import schedule
from astrago.scheduler.cluster import ClusterState
from astrago.scheduler.types import (
    Decisions,
    GpuInfo,
    NodeInfo,
    Quota,
    RunningWorkload,
    SchedulerConfig,
    Snapshot,
    WorkloadRequest,
)

GPU = 1000
WORKSPACES = ("a", "b", "c")

request_strategy = st.one_of(
    st.builds(
        lambda g, model: ResourceRequest(cpu_milli=2000, memory_mib=4096, gpus=g, gpu_model=model),
        st.integers(1, 4),
        st.sampled_from([None, "A100", "H100", "A100|H100"]),
    ),
    st.builds(
        lambda share: ResourceRequest(cpu_milli=1000, memory_mib=2048, gpu_share_milli=share),
        st.sampled_from([250, 500, 750]),
    ),
    st.just(ResourceRequest(cpu_milli=4000, memory_mib=8192)),
)

quota_strategy = st.builds(
    lambda guaranteed, headroom: Quota(
        gpu_guaranteed_milli=guaranteed * GPU,
        gpu_limit_milli=None if headroom is None else (guaranteed + headroom) * GPU,
    ),
    st.integers(0, 4),
    st.one_of(st.none(), st.integers(0, 4)),
)


@st.composite
def workloads(draw: st.DrawFn, prefix: str, first_seq: int) -> list[WorkloadRequest]:
    count = draw(st.integers(0, 12))
    return [
        WorkloadRequest(
            id=f"{prefix}{i}",
            workspace=draw(st.sampled_from(WORKSPACES)),
            resources=draw(request_strategy),
            replicas=draw(st.integers(1, 3)),
            priority=draw(st.integers(0, 2)),
            submitted_seq=first_seq + i,
            preemptible=draw(st.booleans()),
        )
        for i in range(count)
    ]


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Snapshot, SchedulerConfig]:
    names = draw(st.lists(st.integers(0, 10_000), min_size=1, max_size=4, unique=True))
    nodes = tuple(
        NodeInfo(
            f"n{name}",
            32_000,
            128 * 1024,
            tuple(
                GpuInfo(g, draw(st.sampled_from(["A100", "H100"]))) for g in range(draw(st.integers(0, 4)))
            ),
        )
        for name in names
    )
    quotas = tuple((ws, draw(quota_strategy)) for ws in WORKSPACES if draw(st.booleans()))
    config = SchedulerConfig(
        queue=draw(st.sampled_from(["fifo", "priority", "fairshare"])),
        backfill=draw(st.booleans()),
        reservation=draw(st.booleans()),
    )
    first = Snapshot(nodes, (), tuple(draw(workloads("r", 0))), quotas)
    admitted = schedule(first, config)
    by_id = {w.id: w for w in first.pending}
    running = tuple(
        RunningWorkload(by_id[a.workload_id], a.placements, started_seq=i)
        for i, a in enumerate(admitted.admit)
    )
    return Snapshot(nodes, running, tuple(draw(workloads("p", 100))), quotas), config


def _gpu_usage(snapshot: Snapshot, decisions: Decisions) -> dict[str, int]:
    """GPU milli per workspace once victims have stopped and admissions have started."""
    victims = {p.workload_id for p in decisions.preempt}
    workspace_of = {w.id: w.workspace for w in snapshot.pending}
    usage: dict[str, int] = defaultdict(int)
    for running in snapshot.running:
        if running.request.id not in victims:
            usage[running.request.workspace] += sum(
                p.gpu_milli * len(p.gpu_indices) for p in running.placements
            )
    for admission in decisions.admit:
        usage[workspace_of[admission.workload_id]] += sum(
            p.gpu_milli * len(p.gpu_indices) for p in admission.placements
        )
    return usage


FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(scenarios())
def test_nothing_is_over_allocated(scenario: tuple[Snapshot, SchedulerConfig]) -> None:
    snapshot, config = scenario
    decisions = schedule(snapshot, config)

    cluster = ClusterState.from_nodes(snapshot.nodes)
    for running in snapshot.running:
        for placement in running.placements:
            cluster.apply(placement)
    for admission in decisions.admit:  # admissions land beside everything still running (victims included)
        for placement in admission.placements:
            cluster.apply(placement)  # raises ValueError on any over-allocation


@FAST
@given(scenarios())
def test_gangs_are_all_or_nothing_and_everyone_is_accounted_for(
    scenario: tuple[Snapshot, SchedulerConfig],
) -> None:
    snapshot, config = scenario
    decisions = schedule(snapshot, config)

    replicas = {w.id: w.replicas for w in snapshot.pending}
    for admission in decisions.admit:
        assert len(admission.placements) == replicas[admission.workload_id]
    admitted = {a.workload_id for a in decisions.admit}
    assert admitted.isdisjoint(decisions.pending)
    assert admitted | set(decisions.pending) == set(replicas)
    assert sorted(r.position for r in decisions.pending.values()) == list(
        range(1, len(decisions.pending) + 1)
    )
    assert all(r.message for r in decisions.pending.values())


@FAST
@given(scenarios())
def test_limits_are_never_exceeded(scenario: tuple[Snapshot, SchedulerConfig]) -> None:
    snapshot, config = scenario
    decisions = schedule(snapshot, config)

    for workspace, used in _gpu_usage(snapshot, decisions).items():
        quota = snapshot.quota_of(workspace)
        if quota is not None and quota.gpu_limit_milli is not None:
            assert used <= quota.gpu_limit_milli


@FAST
@given(scenarios())
def test_guaranteed_usage_is_never_preempted(scenario: tuple[Snapshot, SchedulerConfig]) -> None:
    snapshot, config = scenario
    decisions = schedule(snapshot, config)

    running = {r.request.id: r for r in snapshot.running}
    pending_workspace = {w.id: w.workspace for w in snapshot.pending}
    before: dict[str, int] = defaultdict(int)
    for r in snapshot.running:
        before[r.request.workspace] += sum(p.gpu_milli * len(p.gpu_indices) for p in r.placements)
    taken: dict[str, int] = defaultdict(int)
    for preemption in decisions.preempt:
        victim = running[preemption.workload_id]
        assert victim.request.preemptible
        assert preemption.for_workload_id is not None
        if pending_workspace[preemption.for_workload_id] != victim.request.workspace:
            taken[victim.request.workspace] += sum(
                p.gpu_milli * len(p.gpu_indices) for p in victim.placements
            )
    for workspace, amount in taken.items():
        quota = snapshot.quota_of(workspace)
        guaranteed = quota.gpu_guaranteed_milli if quota else 0
        assert before[workspace] - amount >= guaranteed


@FAST
@given(scenarios())
def test_the_same_snapshot_gives_the_same_decisions(scenario: tuple[Snapshot, SchedulerConfig]) -> None:
    snapshot, config = scenario

    assert schedule(snapshot, config) == schedule(snapshot, config)
