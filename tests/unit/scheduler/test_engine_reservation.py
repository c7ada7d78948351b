"""Reservation for the head of the queue, backfill around it, and strict order without backfill."""

from __future__ import annotations

from astrago.scheduler import schedule
from astrago.scheduler.types import GpuInfo, NodeInfo, Quota, SchedulerConfig
from tests.unit.scheduler.engine_factories import gpus, job, node, nodes, running_on, snapshot

PENDING = [job("big", request=gpus(4), seq=1), job("small", request=gpus(1), seq=2)]


def _two_busy_gpus(node_name: str = "n0") -> list:
    return [running_on(job(f"r{i}"), node_name, [i], started=i) for i in range(2)]


def test_head_holds_its_node_so_small_work_cannot_starve_it() -> None:
    decisions = schedule(snapshot(nodes(1), PENDING, _two_busy_gpus()))

    assert decisions.admit == []
    assert decisions.pending["big"].code == "no_capacity"
    assert "n0 is held for it" in decisions.pending["big"].message
    assert decisions.pending["small"].code == "reserved"
    assert "big" in decisions.pending["small"].message


def test_backfill_uses_capacity_the_head_does_not_need() -> None:
    cluster = nodes(2)
    busy = _two_busy_gpus("n0") + [running_on(job(f"s{i}"), "n1", [i], started=5 + i) for i in range(3)]

    decisions = schedule(snapshot(cluster, PENDING, busy))

    # The head waits for n0 (2 GPUs free, the closest to fitting); small backfills onto n1.
    assert "n0 is held for it" in decisions.pending["big"].message
    assert [(a.workload_id, a.placements[0].node) for a in decisions.admit] == [("small", "n1")]


def test_without_reservation_small_work_overtakes() -> None:
    decisions = schedule(snapshot(nodes(1), PENDING, _two_busy_gpus()), SchedulerConfig(reservation=False))

    assert [a.workload_id for a in decisions.admit] == ["small"]


def test_without_backfill_nothing_passes_the_blocked_head() -> None:
    cluster = nodes(2)
    busy = _two_busy_gpus("n0") + _two_busy_gpus("n1")

    decisions = schedule(snapshot(cluster, PENDING, busy), SchedulerConfig(backfill=False))

    assert decisions.admit == []
    assert decisions.pending["small"].code == "reserved"
    assert "strict order" in decisions.pending["small"].message


def test_quota_blocked_work_does_not_become_the_head() -> None:
    quotas = {"capped": Quota(gpu_limit_milli=1000)}
    running = [running_on(job("c0", "capped"), "n0", [0])]
    pending = [job("capped-next", "capped", seq=1), job("free", "other", seq=2)]

    decisions = schedule(snapshot(nodes(1), pending, running, quotas))

    assert decisions.pending["capped-next"].code == "quota_limit"
    assert [a.workload_id for a in decisions.admit] == ["free"]


def test_the_heads_reason_names_cpu_when_cpu_is_short_and_gpus_are_free() -> None:
    # a 2-core machine with 4 simulated GPUs: one running job holds both cores and one GPU
    cpu_hog = running_on(job("hog", request=gpus(1, cpu=2000)), "n0", [0])
    waiting = job("waiting", request=gpus(1, cpu=1000), seq=1)

    decisions = schedule(snapshot([node("n0", gpus=4, cpu=2)], [waiting], [cpu_hog]))

    message = decisions.pending["waiting"].message
    assert "CPU is short" in message
    assert "no node has 1000m CPU free (the most free is 0m)" in message
    assert "more than is free" not in message


def test_the_reason_says_when_pods_astrago_did_not_create_hold_the_gpus() -> None:
    held = tuple(GpuInfo(index, "A100", held_by_others=index > 0) for index in range(4))
    cluster = [NodeInfo("n0", cpu_milli=64000, memory_mib=256 * 1024, gpus=held)]

    decisions = schedule(snapshot(cluster, [job("two", request=gpus(2), seq=1)]))

    assert decisions.admit == []
    message = decisions.pending["two"].message
    assert "the largest free is 1" in message
    assert "3 GPUs there are held by pods AstraGo did not create" in message


def test_gpus_held_by_others_are_never_given_out() -> None:
    held = tuple(GpuInfo(index, "A100", held_by_others=index > 0) for index in range(4))
    cluster = [NodeInfo("n0", cpu_milli=64000, memory_mib=256 * 1024, gpus=held)]
    pending = [job(f"w{i}", request=gpus(1), seq=i) for i in range(3)]

    decisions = schedule(snapshot(cluster, pending))

    assert [(a.workload_id, a.placements[0].gpu_indices) for a in decisions.admit] == [("w0", (0,))]
