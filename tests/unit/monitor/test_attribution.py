"""Which replica a GPU process belongs to: parent chains in a fake /proc (pid reuse, re-parenting, the
cache across cycles), allocation for recorded PIDs, pod names on Kubernetes; and why use is unknown."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from astrago.monitor.attribution import (
    Allocation,
    ProcessAncestry,
    ReplicaRef,
    Root,
    owner_of_pod,
    owners_by_allocation,
)
from astrago.monitor.reasons import unknown_reason
from astrago.monitor.sampler import until_next_period
from astrago.monitor.schemas import MIG_NOT_ATTRIBUTABLE, NO_GPUS, SIMULATED_NO_SOURCE

JOB = ReplicaRef("wl-1", 0)
OTHER = ReplicaRef("wl-2", 1)


def _stat(proc: Path, pid: int, ppid: int, start: int) -> None:
    (proc / str(pid)).mkdir(parents=True, exist_ok=True)
    fields = ["S", str(ppid), str(pid), str(pid), "0", "-1", "0", *["0"] * 12, str(start), "0", "0"]
    (proc / str(pid) / "stat").write_text(f"{pid} (py (x) y) {' '.join(fields)}\n")


def test_a_process_belongs_to_the_runner_it_descends_from(tmp_path: Path) -> None:
    # runner 100 -> bwrap 101 -> sandbox init 102 -> python 103 (GPU); runner 200 -> python 201 (GPU)
    for pid, ppid in ((100, 1), (101, 100), (102, 101), (103, 102), (200, 1), (201, 200), (300, 1)):
        _stat(tmp_path, pid, ppid, start=pid * 10)
    roots = [Root(100, 1000, JOB), Root(200, 2000, OTHER)]
    ancestry = ProcessAncestry(tmp_path)
    assert ancestry.owners([103, 201, 300, 999], roots) == {103: JOB, 201: OTHER}
    # a process that double-forked out of its group is re-parented to the sandbox's init: still the job's
    _stat(tmp_path, 104, 102, start=1040)
    assert ancestry.owners([104], roots) == {104: JOB}


def test_a_reused_runner_pid_is_not_the_runner(tmp_path: Path) -> None:
    _stat(tmp_path, 100, 1, start=5555)  # pid 100 now belongs to another process than the recorded runner
    _stat(tmp_path, 103, 100, start=6000)
    assert ProcessAncestry(tmp_path).owners([103], [Root(100, 1000, JOB)]) == {}


def test_the_cache_follows_the_process_and_its_runner(tmp_path: Path) -> None:
    for pid, ppid in ((100, 1), (101, 100), (103, 101)):
        _stat(tmp_path, pid, ppid, start=pid * 10)
    ancestry = ProcessAncestry(tmp_path)
    root = Root(100, 1000, JOB)
    assert ancestry.owners([103], [root]) == {103: JOB}
    (tmp_path / "101" / "stat").unlink()  # the chain is not read again while 103 and its runner live
    assert ancestry.owners([103], [root]) == {103: JOB}
    assert ancestry.owners([103], []) == {}  # the runner ended: nothing is attributed to it any more
    _stat(tmp_path, 103, 1, start=9999)  # pid 103 reused by a stranger
    assert ancestry.owners([103], [root]) == {}


def test_recorded_pids_go_to_the_replica_that_holds_the_gpu_whole_and_alone() -> None:
    allocations = [
        Allocation(JOB, "n1", (0, 1), shared=False),
        Allocation(OTHER, "n1", (2,), shared=True),
        Allocation(ReplicaRef("wl-3", 0), "n1", (2,), shared=True),
        Allocation(ReplicaRef("wl-4", 0), "n2", (0,), shared=False),
    ]
    assert owners_by_allocation("n1", 1, allocations) == JOB
    assert owners_by_allocation("n2", 0, allocations) == ReplicaRef("wl-4", 0)
    assert owners_by_allocation("n1", 2, allocations) is None  # shared: whose process it is is unknown
    assert owners_by_allocation("n1", 3, allocations) is None


def test_pods_map_to_replicas_by_name() -> None:
    names = {"ag-wl-1": "wl-1", "ag-wl-22": "wl-22", "ag-svc": "svc"}
    replicas = {"wl-1": 1, "wl-22": 4, "svc": 1}
    assert owner_of_pod("ag-wl-1", names, replicas) == ReplicaRef("wl-1", 0)
    assert owner_of_pod("ag-wl-22-3-x7k2p", names, replicas) == ReplicaRef("wl-22", 3)
    assert owner_of_pod("ag-wl-22-worker-2", names, replicas) == ReplicaRef("wl-22", 2)  # MPIJob
    assert owner_of_pod("ag-wl-22-launcher", names, replicas) is None  # holds no GPU
    assert owner_of_pod("ag-svc-5d8f7c9b6d-x7k2p", names, replicas) == ReplicaRef("svc", 0)
    assert owner_of_pod("ag-wl-2", names, replicas) is None
    assert owner_of_pod("someone-else", names, replicas) is None


def test_unknown_use_is_explained_never_zero() -> None:
    def reason(**kw: object) -> str | None:
        base = {"holds_gpus": True, "on_simulated_gpus": False, "source": "nvml", "samples": 0}
        return unknown_reason(**{**base, "attributable_samples": 0, **kw})  # type: ignore[arg-type]

    assert reason(attributable_samples=3) is None
    assert reason(holds_gpus=False) == NO_GPUS
    assert reason(samples=5) == MIG_NOT_ATTRIBUTABLE
    assert reason(on_simulated_gpus=True, source=None) == SIMULATED_NO_SOURCE
    assert reason() == "no GPU samples for this period (source: nvml)"


def test_the_sampler_wakes_on_period_boundaries() -> None:
    assert until_next_period(10, datetime(2026, 12, 2, 1, 0, 3, 500000, tzinfo=UTC)) == pytest.approx(6.55)
    assert until_next_period(10, datetime(2026, 12, 2, 1, 0, 9, 990000, tzinfo=UTC)) == pytest.approx(0.06)
