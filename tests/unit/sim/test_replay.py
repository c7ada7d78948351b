"""Time-mode replay: reservation against starvation, preemption stops, metrics, determinism."""

from __future__ import annotations

from dataclasses import replace

import pytest

from astrago.domain.resources import ResourceRequest
from astrago.scheduler.types import GpuInfo, NodeInfo
from astrago.sim.replay import ReplayConfig, ReplayReport, jain_index, replay, scale_cluster, team_of
from astrago.sim.traces import TracePod

ONE_NODE = [NodeInfo("n0", 64_000, 256 * 1024, tuple(GpuInfo(i, "A100") for i in range(4)))]


def gpu_pod(name: str, gpus: int, arrival: int, duration: int, workspace: str = "team") -> TracePod:
    return TracePod(
        name=name,
        request=ResourceRequest(cpu_milli=1000, memory_mib=1024, gpus=gpus),
        workspace=workspace,
        creation_time=arrival,
        duration=duration,
    )


def starving_trace() -> list[TracePod]:
    """A stream of 1-GPU jobs that always keeps some GPU busy, and one 4-GPU job arriving early on."""
    stream = [gpu_pod(f"small-{i:02d}", 1, arrival=10 * i, duration=35) for i in range(60)]
    return [*stream, gpu_pod("big", 4, arrival=15, duration=100)]


def start_of(report: ReplayReport, name: str) -> int | None:
    return next(job.first_start for job in report.jobs if job.request.id == name)


def test_reservation_lets_a_starving_large_job_run() -> None:
    config = ReplayConfig(policy="bestfit", queue="fifo", teams=1, preemption=False)

    with_reservation = replay(ONE_NODE, starving_trace(), config)
    without = replay(ONE_NODE, starving_trace(), replace(config, reservation=False))

    big_with, big_without = start_of(with_reservation, "big"), start_of(without, "big")
    assert big_with is not None
    assert big_with <= 15 + 35  # as soon as the jobs already running have ended
    assert big_without is not None
    assert big_without >= 590  # only once the stream of small jobs is over
    assert with_reservation.to_json()["pods_completed"] == 61


def test_reclaiming_a_guarantee_preempts_and_requeues_the_borrower() -> None:
    # team-b borrows the whole node; team-a (guaranteed half via equal shares) then asks for its 2 GPUs.
    pods = [
        gpu_pod("borrower-0", 2, arrival=0, duration=1000, workspace="b"),
        gpu_pod("borrower-1", 2, arrival=0, duration=1000, workspace="b"),
        gpu_pod("owner", 2, arrival=100, duration=50, workspace="a"),
    ]
    report = replay(ONE_NODE, pods, ReplayConfig(policy="bestfit", grace_seconds=30))
    result = report.to_json()

    assert result["preemptions"] == 1
    assert start_of(report, "owner") == 130  # after the victim's grace period
    victim = next(job for job in report.jobs if job.preemptions)
    assert victim.finished_at is not None
    assert victim.finished_at >= 1000 + 30  # it lost its GPUs for a while, but none of its work


def test_report_keys_and_units() -> None:
    result = replay(ONE_NODE, starving_trace(), ReplayConfig(policy="bestfit", teams=2)).to_json()

    for key in ("queueing_delay_s", "jct_s"):
        assert set(result[key]) == {"mean", "p50", "p95", "p99", "max"}
    assert 0 < result["gpu_utilisation_mean"] <= result["gpu_utilisation_peak"] <= 100
    assert result["makespan_s"] >= 590
    assert 0 < result["jain_fairness"] <= 1
    assert result["gpus"] == 4
    assert set(result["queueing_delay_by_type_s"]) == {"1-gpu", "4-gpu"}
    assert all(0 <= point[1] <= 100 for point in result["gpu_utilisation"])


def test_replay_is_deterministic() -> None:
    config = ReplayConfig(policy="astra", teams=3)

    first = replay(ONE_NODE, starving_trace(), config).to_json()
    second = replay(ONE_NODE, starving_trace(), config).to_json()

    first.pop("seconds"), second.pop("seconds")
    assert first == second


def test_pods_that_can_never_run_are_counted_not_queued_forever() -> None:
    pods = [gpu_pod("huge", 8, arrival=0, duration=10), gpu_pod("ok", 1, arrival=0, duration=10)]

    result = replay(ONE_NODE, pods, ReplayConfig(policy="bestfit")).to_json()

    assert result["failed_pods_by_type"] == {"no_fit:8-gpu": 1}
    assert result["pods_completed"] == 1


def test_cluster_scale_keeps_an_even_spread() -> None:
    nodes = [NodeInfo(f"n{i}", 1000, 1024) for i in range(10)]

    assert [n.name for n in scale_cluster(nodes, 0.6)] == ["n1", "n3", "n4", "n6", "n8", "n9"]
    assert len(scale_cluster(nodes, 1.0)) == 10
    with pytest.raises(ValueError, match="cluster scale"):
        scale_cluster(nodes, 0)


def test_team_assignment_is_stable() -> None:
    pod = TracePod(name="openb-pod-0001", request=ResourceRequest())

    assert team_of(pod, 8) == team_of(pod, 8)
    assert team_of(pod, 8).startswith("team-")
    assert {team_of(TracePod(f"p{i}", ResourceRequest()), 4) for i in range(100)} == {
        f"team-{i}" for i in range(4)
    }


def test_jain_index() -> None:
    assert jain_index([1, 1, 1, 1]) == pytest.approx(1.0)
    assert jain_index([1, 0, 0, 0]) == pytest.approx(0.25)
    assert jain_index([]) == 1.0


def test_team_skew_makes_the_first_teams_larger() -> None:
    pods = [TracePod(f"p{i}", ResourceRequest()) for i in range(2000)]

    sizes = [sum(team_of(p, 4, skew=1.0) == f"team-{t}" for p in pods) for t in range(4)]

    assert sizes == sorted(sizes, reverse=True)
    assert sizes[0] > 3 * sizes[3]  # Zipf(1) over 4 teams: 48% vs 12%
