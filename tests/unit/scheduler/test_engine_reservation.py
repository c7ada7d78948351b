"""Reservation for the head of the queue, backfill around it, and strict order without backfill."""

from __future__ import annotations

from astrago.scheduler import schedule
from astrago.scheduler.types import Quota, SchedulerConfig
from tests.unit.scheduler.engine_factories import gpus, job, nodes, running_on, snapshot

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
