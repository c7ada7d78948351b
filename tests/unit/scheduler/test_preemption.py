"""Preemption: who may be a victim, the minimal victim set, and waiting for victims to stop."""

from __future__ import annotations

from astrago.domain.resources import ResourceRequest
from astrago.scheduler import schedule
from astrago.scheduler.types import Quota, SchedulerConfig
from tests.unit.scheduler.engine_factories import GPU, gpus, job, node, nodes, running_on, snapshot

GUARANTEED_A = {"a": Quota(gpu_guaranteed_milli=4 * GPU), "b": Quota()}


def _borrowers(count: int, workspace: str = "b") -> list:
    return [running_on(job(f"{workspace}{i}", workspace), "n0", [i], started=i) for i in range(count)]


def test_reclaiming_a_guarantee_preempts_the_youngest_borrowers() -> None:
    decisions = schedule(snapshot(nodes(1), [job("mine", "a", gpus(2))], _borrowers(4), GUARANTEED_A))

    assert sorted(p.workload_id for p in decisions.preempt) == ["b2", "b3"]
    assert all(p.for_workload_id == "mine" for p in decisions.preempt)
    assert "borrowing" in decisions.preempt[0].reason
    assert decisions.pending["mine"].code == "preempting"
    assert decisions.admit == []


def test_guaranteed_usage_is_never_preempted_by_another_workspace() -> None:
    quotas = {"a": Quota(), "b": Quota(gpu_guaranteed_milli=4 * GPU)}
    urgent = job("urgent", "a", gpus(1), priority=100)

    decisions = schedule(snapshot(nodes(1), [urgent], _borrowers(4), quotas))

    assert decisions.preempt == []
    assert decisions.pending["urgent"].code == "no_capacity"


def test_only_the_borrowed_part_of_a_workspace_is_reclaimed() -> None:
    quotas = {"a": Quota(gpu_guaranteed_milli=4 * GPU), "b": Quota(gpu_guaranteed_milli=2 * GPU)}

    decisions = schedule(snapshot(nodes(1), [job("mine", "a", gpus(3))], _borrowers(4), quotas))

    assert decisions.preempt == []  # b may lose 2 borrowed GPUs, not 3
    assert decisions.pending["mine"].code == "no_capacity"


def test_higher_priority_preempts_lower_priority_in_its_own_workspace() -> None:
    low = [running_on(job(f"low{i}", "a", priority=0), "n0", [i], started=i) for i in range(4)]

    decisions = schedule(snapshot(nodes(1), [job("high", "a", priority=5)], low))

    assert [p.workload_id for p in decisions.preempt] == ["low3"]


def test_equal_priority_in_the_same_workspace_is_not_preempted() -> None:
    same = [running_on(job(f"r{i}", "a"), "n0", [i], started=i) for i in range(4)]

    decisions = schedule(snapshot(nodes(1), [job("new", "a")], same))

    assert decisions.preempt == []


def test_non_preemptible_workloads_are_never_victims() -> None:
    fixed = [running_on(job(f"b{i}", "b", preemptible=False), "n0", [i], started=i) for i in range(4)]

    decisions = schedule(snapshot(nodes(1), [job("mine", "a")], fixed, GUARANTEED_A))

    assert decisions.preempt == []


def test_preemption_can_be_switched_off() -> None:
    decisions = schedule(
        snapshot(nodes(1), [job("mine", "a")], _borrowers(4), GUARANTEED_A),
        SchedulerConfig(preemption=False),
    )

    assert decisions.preempt == []


def test_victim_set_is_minimal() -> None:
    # n0: x (1 GPU, youngest) and z (1 GPU, oldest); n1: y (2 GPUs). A 2-GPU preemptor picks x first, which
    # alone does not help, then y, which does; x is then given back.
    cluster = [node("n0", 2), node("n1", 2)]
    x = running_on(job("x", "b"), "n0", [0], started=3)
    z = running_on(job("z", "b"), "n0", [1], started=1)
    y = running_on(job("y", "b", gpus(2)), "n1", [0, 1], started=2)

    decisions = schedule(snapshot(cluster, [job("mine", "a", gpus(2))], [x, y, z], GUARANTEED_A))

    assert [p.workload_id for p in decisions.preempt] == ["y"]


def test_no_victims_when_preemption_would_not_make_it_fit() -> None:
    # The 4-GPU node is not borrowable room: only one GPU there belongs to a borrower.
    cluster = [node("n0", 4)]
    mixed = [running_on(job("b0", "b"), "n0", [0], started=1)] + [
        running_on(job(f"c{i}", "c"), "n0", [i]) for i in (1, 2, 3)
    ]
    quotas = {**GUARANTEED_A, "c": Quota(gpu_guaranteed_milli=3 * GPU)}

    decisions = schedule(snapshot(cluster, [job("mine", "a", gpus(4))], mixed, quotas))

    assert decisions.preempt == []


def test_waits_for_terminating_victims_instead_of_choosing_more() -> None:
    leaving = [running_on(job("b3", "b"), "n0", [3], started=3, terminating=True)]
    staying = [running_on(job(f"b{i}", "b"), "n0", [i], started=i) for i in range(3)]

    decisions = schedule(snapshot(nodes(1), [job("mine", "a")], leaving + staying, GUARANTEED_A))

    assert decisions.preempt == []
    assert decisions.pending["mine"].code == "preempting"
    assert "b3" in decisions.pending["mine"].message


def test_room_being_freed_for_a_preemptor_is_not_taken_by_later_work() -> None:
    pending = [job("mine", "a", gpus(4), seq=1), job("other", "c", gpus(1), seq=2)]
    cluster = [node("n0", 4), node("n1", 4)]
    borrowers = [running_on(job(f"b{i}", "b"), "n0", [i], started=i) for i in range(4)]
    others = [running_on(job("c-run", "c", gpus(3)), "n1", [0, 1, 2])]
    quotas = {**GUARANTEED_A, "c": Quota(gpu_guaranteed_milli=4 * GPU)}

    decisions = schedule(snapshot(cluster, pending, borrowers + others, quotas))

    assert len(decisions.preempt) == 4
    assert [a.workload_id for a in decisions.admit] == ["other"]
    assert decisions.admit[0].placements[0].node == "n1"


def test_cpu_only_work_claims_no_gpu_guarantee() -> None:
    # n0's CPU is taken by borrowers; a CPU-only job of a workspace with only a GPU guarantee waits.
    cpu_heavy = ResourceRequest(cpu_milli=32_000, memory_mib=1024, gpus=1)
    borrowers = [running_on(job(f"b{i}", "b", cpu_heavy), "n0", [i], started=i) for i in range(2)]
    cpu_job = job("cpu", "a", ResourceRequest(cpu_milli=8000, memory_mib=1024))

    decisions = schedule(snapshot([node("n0", 4, cpu=64)], [cpu_job], borrowers, GUARANTEED_A))

    assert decisions.preempt == []
    assert decisions.pending["cpu"].code == "no_capacity"


def test_work_admitted_in_the_same_cycle_is_never_a_victim() -> None:
    pending = [job("low", "a", gpus(4), seq=1), job("high", "a", gpus(4), seq=2, priority=5)]

    decisions = schedule(snapshot(nodes(1), pending), SchedulerConfig(queue="fifo"))

    assert [a.workload_id for a in decisions.admit] == ["low"]
    assert decisions.preempt == []
