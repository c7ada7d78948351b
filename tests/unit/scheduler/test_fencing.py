"""Fenced GPUs and cordoned nodes: no new work lands on them, work already there stays accounted, and a
workload that waits because of them is told which GPU or node and why."""

from __future__ import annotations

from dataclasses import replace

from astrago.scheduler.engine import schedule
from astrago.scheduler.types import NodeInfo
from tests.unit.scheduler.engine_factories import GPU, gpus, job, node, running_on, snapshot

XID_NOTE = "GPU 2 on node a is fenced: XID 79 (GPU fallen off the bus)"


def fence(info: NodeInfo, index: int, note: str) -> NodeInfo:
    devices = tuple(replace(g, fenced=note) if g.index == index else g for g in info.gpus)
    return replace(info, gpus=devices)


def test_new_work_avoids_a_fenced_gpu() -> None:
    cluster = [fence(node("a", gpus=4), 0, "GPU 0 on node a is fenced: XID 48 (double-bit ECC error)")]
    decisions = schedule(snapshot(cluster, [job("w1", request=gpus(3))]))
    (admission,) = decisions.admit
    assert admission.placements[0].gpu_indices == (1, 2, 3)


def test_the_last_free_gpu_fenced_makes_the_job_wait_naming_it() -> None:
    cluster = [fence(node("a", gpus=4), 2, XID_NOTE)]
    running = [running_on(job("r", request=gpus(1)), "a", [index]) for index in (0, 1, 3)]
    decisions = schedule(snapshot(cluster, [job("w1", request=gpus(1))], running))
    assert not decisions.admit
    reason = decisions.pending["w1"]
    assert reason.code == "no_capacity"
    assert XID_NOTE in reason.message


def test_all_eligible_gpus_fenced_names_them_even_when_it_never_fits() -> None:
    cluster = [fence(node("a", gpus=1), 0, "GPU 0 on node a is fenced: XID 79 (GPU fallen off the bus)")]
    decisions = schedule(snapshot(cluster, [job("w1", request=gpus(1))]))
    reason = decisions.pending["w1"]
    assert reason.code == "no_fit"
    assert reason.message.endswith("; GPU 0 on node a is fenced: XID 79 (GPU fallen off the bus)")


def test_a_job_already_on_a_fenced_gpu_stays_accounted_and_the_node_stays_usable() -> None:
    cluster = [fence(node("a", gpus=2), 0, "GPU 0 on node a is fenced: XID 94 (contained ECC error)")]
    victim = running_on(job("old", request=gpus(1)), "a", [0])
    decisions = schedule(snapshot(cluster, [job("new", request=gpus(1))], [victim]))
    (admission,) = decisions.admit
    assert admission.placements[0].gpu_indices == (1,)  # not the whole node written off


def test_fenced_gpus_of_other_models_are_not_named() -> None:
    h100 = fence(node("h", gpus=1, model="H100"), 0, "GPU 0 on node h is fenced: XID 79 (...)")
    a100 = node("a", gpus=1, model="A100")
    running = [running_on(job("r", request=gpus(1)), "a", [0])]
    decisions = schedule(snapshot([h100, a100], [job("w1", request=gpus(1, model="A100"))], running))
    assert "fenced" not in decisions.pending["w1"].message


def test_a_cordoned_node_takes_no_new_work_and_is_named() -> None:
    cordoned = replace(
        node("a", gpus=4), schedulable=False, cordoned="node a is cordoned by admin: BIOS update"
    )
    decisions = schedule(snapshot([cordoned], [job("w1", request=gpus(1))]))
    assert not decisions.admit
    assert decisions.pending["w1"].message.endswith("; node a is cordoned by admin: BIOS update")


def test_capacity_for_quotas_leaves_fenced_gpus_out() -> None:
    from astrago.scheduler.cluster import ClusterState

    cluster = ClusterState.from_nodes([fence(node("a", gpus=4), 1, "fenced")])
    assert cluster.gpu_capacity_milli == 3 * GPU
