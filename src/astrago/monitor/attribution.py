"""Which workload replica a GPU process belongs to.

Local backend: every process of a replica descends from that replica's runner (the runner starts the
command, or its bubblewrap sandbox, as a child; orphans inside a sandbox are re-parented to the sandbox's
PID 1, itself a descendant of the runner). A process that changes its session or process group is still a
descendant, so walking the parent chain in /proc up to a known runner is robust where pgid or sid are not.
A runner is known by its pid *and* start time, so a reused pid never makes a stranger a replica's process.

Recorded outputs (`replay:`) hold another machine's PIDs: their processes are attributed by allocation
instead — a GPU held whole by exactly one replica gives it everything that runs there.

Kubernetes: the GPU exporter labels each process with its pod; a pod's name derives from the workload id."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

MAX_DEPTH = 64  # a parent chain longer than this is not one the platform started


@dataclass(frozen=True, slots=True)
class ReplicaRef:
    workload_id: str
    replica_index: int


@dataclass(frozen=True, slots=True)
class Root:
    """A process whose descendants belong to `ref` (a replica's runner), identified by pid and start time."""

    pid: int
    start_ticks: int
    ref: ReplicaRef


@dataclass(frozen=True, slots=True)
class Allocation:
    """One live replica's place: where it runs and which whole GPUs it holds."""

    ref: ReplicaRef
    node: str
    gpu_indices: tuple[int, ...]
    shared: bool  # a fraction or a MIG slice of its GPUs: others may run there too


class ProcessAncestry:
    """Maps host PIDs to the replica whose runner they descend from.

    A GPU process's chain is walked once: while the process (same pid and start time) stays on the GPU and
    its runner stays live, later cycles read only the process's own `stat` (GPU processes outlive many
    sampling intervals, so the steady state is one small read per process)."""

    def __init__(self, proc_root: str | Path = "/proc") -> None:
        self._root = str(proc_root)
        self._stats: dict[int, tuple[int, int]] = {}  # pid -> (start time, parent pid), this cycle's
        self._known: dict[int, tuple[int, Root]] = {}  # GPU pid -> (its start time, the root found)

    def owners(self, pids: Iterable[int], roots: Iterable[Root]) -> dict[int, ReplicaRef]:
        """The replica of each PID in `pids` that descends from (or is) one of `roots`."""
        by_pid = {root.pid: root for root in roots}
        self._stats = {}
        known: dict[int, tuple[int, Root]] = {}
        found: dict[int, ReplicaRef] = {}
        for pid in pids:
            stat = self._stat(pid)
            if stat is None:
                continue
            cached = self._known.get(pid)
            if cached is not None and cached[0] == stat[0] and by_pid.get(cached[1].pid) == cached[1]:
                root: Root | None = cached[1]
            else:
                root = self._root_of(pid, by_pid)
            if root is not None:
                known[pid] = (stat[0], root)
                found[pid] = root.ref
        self._known = known
        return found

    def _root_of(self, pid: int, roots: Mapping[int, Root]) -> Root | None:
        current = pid
        for _ in range(MAX_DEPTH):
            stat = self._stat(current)
            if stat is None:
                return None
            start, parent = stat
            root = roots.get(current)
            if root is not None and root.start_ticks == start:  # not a reused pid
                return root
            if parent <= 1:
                return None
            current = parent
        return None

    def _stat(self, pid: int) -> tuple[int, int] | None:
        """(start time, parent pid), read once per cycle: GPU processes of one job share their ancestors."""
        cached = self._stats.get(pid)
        if cached is not None:
            return cached
        try:
            fd = os.open(f"{self._root}/{pid}/stat", os.O_RDONLY)
            try:
                stat = os.read(fd, 4096).decode(errors="replace")
            finally:
                os.close(fd)
            after_command = stat[stat.rindex(")") + 2 :].split()
            found = (int(after_command[19]), int(after_command[1]))
        except (OSError, ValueError, IndexError):
            return None
        self._stats[pid] = found
        return found


def owners_by_allocation(node: str, gpu_index: int, allocations: Sequence[Allocation]) -> ReplicaRef | None:
    """The replica that holds GPU `gpu_index` of `node` whole and alone, if exactly one does."""
    holders = [a for a in allocations if a.node == node and gpu_index in a.gpu_indices]
    if len(holders) == 1 and not holders[0].shared:
        return holders[0].ref
    return None


# An Indexed Job's pod `<name>-<index>-<random>`, an MPIJob's worker `<name>-worker-<index>`.
_POD_SUFFIX = re.compile(r"^-(?:worker-)?(?P<index>\d+)(?:-[a-z0-9]{5})?$")


def owner_of_pod(pod: str, names: Mapping[str, str], replicas: Mapping[str, int]) -> ReplicaRef | None:
    """The replica a pod belongs to, from its name: `names` maps each live workload's object name (see the
    Kubernetes backend's naming) to its id; an Indexed Job's pod `<name>-<index>-<random>` and an MPIJob's
    worker `<name>-worker-<index>` are replica `<index>`; any other pod of a single-replica workload (a
    Deployment's `<name>-<hash>-<random>`) is replica 0."""
    for base, workload_id in names.items():
        if pod == base:
            return ReplicaRef(workload_id, 0)
        if not pod.startswith(base + "-"):
            continue
        suffix = _POD_SUFFIX.match(pod[len(base) :])
        if suffix is not None and replicas.get(workload_id, 1) > 1:
            return ReplicaRef(workload_id, int(suffix["index"]))
        if replicas.get(workload_id, 1) == 1:
            return ReplicaRef(workload_id, 0)
    return None
