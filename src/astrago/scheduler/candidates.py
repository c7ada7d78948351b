"""Feasible placements of one request: the filtering every placement policy shares.

`find_candidates` checks CPU, memory, GPU model, free GPU milli and MIG slices on every node at once and
proposes where the GPUs would come from; policies then only score the candidates."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np

from astrago.scheduler import mig
from astrago.scheduler.cluster import WHOLE_GPU_MILLI, BoolArray, ClusterState, IntArray, RequestShape
from astrago.scheduler.types import ReplicaPlacement


class GpuChoice(Enum):
    """How candidates are proposed for a request that takes part of one GPU (a share or a MIG slice)."""

    BEST_FIT = "best_fit"  # one per node: the GPU with the least free room that fits (the common default)
    EACH = "each"  # one per distinct free amount on a node: the policy's score picks the GPU too


@dataclass(frozen=True, slots=True)
class Candidates:
    """Feasible placements, as parallel arrays of length K.

    `gpu` is the GPU a share or MIG request would use (-1 otherwise) and `gpu_free` its free milli before
    the placement; `whole_gpus` [K, k] the fully free GPUs a k-GPU request would take (lowest indices
    first); `mig_start` the MIG slice (-1 otherwise)."""

    shape: RequestShape
    node: IntArray
    gpu: IntArray
    gpu_free: IntArray
    whole_gpus: IntArray
    mig_start: IntArray

    def __len__(self) -> int:
        return int(self.node.shape[0])

    def subset(self, keep: BoolArray | IntArray) -> Candidates:
        """The candidates selected by a mask or by indices."""
        return Candidates(
            self.shape,
            self.node[keep],
            self.gpu[keep],
            self.gpu_free[keep],
            self.whole_gpus[keep],
            self.mig_start[keep],
        )

    def placement(self, cluster: ClusterState, k: int) -> ReplicaPlacement:
        shape = self.shape
        name = cluster.node_names[int(self.node[k])]
        if shape.kind == "cpu":
            return ReplicaPlacement(name, shape.cpu_milli, shape.memory_mib)
        if shape.kind == "whole":
            gpus = tuple(int(g) for g in self.whole_gpus[k])
            return ReplicaPlacement(name, shape.cpu_milli, shape.memory_mib, gpus, WHOLE_GPU_MILLI)
        gpu = int(self.gpu[k])
        if shape.kind == "share":
            return ReplicaPlacement(name, shape.cpu_milli, shape.memory_mib, (gpu,), shape.gpu_milli)
        node = int(self.node[k])
        family = cluster.mig_families[int(cluster.gpu_mig_family[node, gpu])]
        profile = family.profile(shape.mig_profile or "")
        size = profile.size if profile else 0
        return ReplicaPlacement(
            name,
            shape.cpu_milli,
            shape.memory_mib,
            (gpu,),
            size * WHOLE_GPU_MILLI // family.slices,
            mig_profile=shape.mig_profile,
            mig_start=int(self.mig_start[k]),
        )


def _empty(shape: RequestShape) -> Candidates:
    none = np.zeros(0, np.int64)
    return Candidates(shape, none, none, none, np.zeros((0, shape.gpus), np.int64), none)


def find_candidates(cluster: ClusterState, shape: RequestShape, choice: GpuChoice) -> Candidates:
    hosts = cluster.host_fits(shape)
    if shape.kind == "cpu":
        nodes = np.flatnonzero(hosts)
        minus = np.full(nodes.shape[0], -1, np.int64)
        return Candidates(
            shape, nodes, minus, np.zeros_like(nodes), np.zeros((len(nodes), 0), np.int64), minus
        )
    if shape.kind == "mig":
        return _mig_candidates(cluster, shape, hosts, choice)
    usable = cluster.gpu_allowed(shape.models) & hosts[:, None] & (cluster.gpu_free >= shape.gpu_milli)
    if shape.kind == "whole":
        counts = usable.sum(axis=1)
        nodes = np.flatnonzero(counts >= shape.gpus)
        # Stable argsort of "not usable" lists each node's usable GPUs first, lowest index first.
        order = np.argsort(~usable[nodes], axis=1, kind="stable")[:, : shape.gpus]
        minus = np.full(nodes.shape[0], -1, np.int64)
        free = np.full(nodes.shape[0], WHOLE_GPU_MILLI, np.int64)
        return Candidates(shape, nodes, minus, free, order.astype(np.int64), minus)
    rows = np.flatnonzero(usable.any(axis=1))
    row_free = np.where(usable[rows], cluster.gpu_free[rows], WHOLE_GPU_MILLI + 1)  # unusable never matches
    if choice is GpuChoice.BEST_FIT:
        nodes, gpus = rows, row_free.argmin(axis=1)
    else:
        # Equal free amounts on one node are interchangeable: keep the lowest GPU index of each. Sorting
        # free·G + index per row puts equal amounts together, lowest index first.
        slots = row_free.shape[1]
        keyed = np.sort(row_free * slots + np.arange(slots), axis=1)
        amount = keyed // slots
        first = np.ones(keyed.shape, np.bool_)
        first[:, 1:] = amount[:, 1:] != amount[:, :-1]
        local, position = np.nonzero(first & (amount <= WHOLE_GPU_MILLI))
        nodes, gpus = rows[local], keyed[local, position] % slots
    minus = np.full(nodes.shape[0], -1, np.int64)
    return Candidates(
        shape,
        nodes.astype(np.int64),
        gpus.astype(np.int64),
        cluster.gpu_free[nodes, gpus],
        np.zeros((len(nodes), 0), np.int64),
        minus,
    )


def _mig_candidates(
    cluster: ClusterState, shape: RequestShape, hosts: BoolArray, choice: GpuChoice
) -> Candidates:
    capable = cluster.mig_capable(shape) & hosts[:, None]
    found: dict[int, list[tuple[int, int, int]]] = {}  # node -> [(free slices, gpu, start)]
    for node, gpu in zip(*np.nonzero(capable), strict=True):
        family = cluster.mig_families[int(cluster.gpu_mig_family[node, gpu])]
        profile = family.profile(shape.mig_profile or "")
        used = int(cluster.mig_used[node, gpu])
        start = mig.best_start(family, profile, used) if profile else None
        if start is not None:
            free_slices = family.slices - bin(used).count("1")
            found.setdefault(int(node), []).append((free_slices, int(gpu), start))
    if not found:
        return _empty(shape)
    rows: list[tuple[int, int, int]] = []
    for node, options in sorted(found.items()):
        if choice is GpuChoice.BEST_FIT:
            free_slices, gpu, start = min(options)
            rows.append((node, gpu, start))
        else:
            rows.extend((node, gpu, start) for _, gpu, start in options)
    table = np.array(rows, np.int64)
    nodes, gpus = table[:, 0], table[:, 1]
    return Candidates(
        shape, nodes, gpus, cluster.gpu_free[nodes, gpus], np.zeros((len(rows), 0), np.int64), table[:, 2]
    )
