"""GPU fragmentation as defined by FGD (Weng et al., USENIX ATC'23), computed incrementally.

Typical pods M: the most frequent (cpu, GPU milli per GPU, GPU count, GPU model list) shapes of a workload,
taken one by one until they cover 95% of it, weights p_m renormalised over the kept shapes.

For node n with idle = Σ free milli of its (non-MIG) GPUs, the fragment a typical pod m sees is
    f_n(m) = idle                                 if m needs no GPU, or the node lacks CPU for m, or fewer
                                                  than num(m) GPUs of an allowed model have free ≥ milli(m)
    f_n(m) = idle − Σ free of allowed GPUs with free ≥ milli(m)      otherwise,
which equals the paper's "Σ free of GPUs with free < milli(m)" on nodes of one GPU model. F_n = Σ p_m f_n(m).

`FragmentationTracker` keeps per node and typical pod the count and the free milli of GPUs that fit, and
recomputes only the rows of nodes the cluster logs as changed. The change a candidate placement would
cause is then a handful of [K, M] array operations, never a recomputation of the cluster."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from astrago.domain.resources import ResourceRequest
from astrago.scheduler.candidates import Candidates
from astrago.scheduler.cluster import BoolArray, ClusterState, FloatArray, IntArray, RequestShape

COVERAGE = 0.95
SHAPES_PER_STEP = 1  # the reference artifact's podIncreaseStep


@dataclass(frozen=True, slots=True)
class TypicalPod:
    cpu_milli: int
    gpu_milli: int  # per GPU; 0 for CPU-only
    gpus: int
    models: frozenset[str] | None
    weight: float


def _shape_key(shape: RequestShape) -> tuple[int, int, int, str]:
    models = "|".join(sorted(shape.models)) if shape.models else ""
    return shape.cpu_milli, shape.gpu_milli, shape.gpus, models


def typical_pods(requests: Iterable[ResourceRequest], coverage: float = COVERAGE) -> list[TypicalPod]:
    """The FGD typical-pod set of a workload. MIG requests are left out (FGD has no notion of them)."""
    counts: Counter[tuple[int, int, int, str]] = Counter()
    for request in requests:
        shape = RequestShape.of(request)
        if shape.kind != "mig":
            counts[_shape_key(shape)] += 1
    total = sum(counts.values())
    if not total:
        return []
    # Most frequent first; equal counts ordered by the larger shape first, as the reference simulator's
    # reversed (cpu, milli, count, model) sort does.
    ordered = sorted(counts.items(), key=lambda item: (item[1], item[0]), reverse=True)
    kept, covered = 0, 0
    while covered < coverage * total and kept < len(ordered):
        step = ordered[kept : kept + SHAPES_PER_STEP]
        covered += sum(count for _, count in step)
        kept += len(step)
    chosen = ordered[:kept]
    return [
        TypicalPod(cpu, milli, gpus, frozenset(models.split("|")) if models else None, count / covered)
        for (cpu, milli, gpus, models), count in chosen
    ]


class FragmentationTracker:
    """Per-node fragmentation of one cluster for one typical-pod set, kept in sync incrementally."""

    def __init__(self, pods: list[TypicalPod]) -> None:
        self.pods = pods
        self.cpu = np.array([p.cpu_milli for p in pods], np.int64)
        self.milli = np.array([p.gpu_milli for p in pods], np.int64)
        self.count = np.array([p.gpus for p in pods], np.int64)
        self.weight = np.array([p.weight for p in pods], np.float64)
        self.needs_gpu = self.milli > 0
        self._cluster_id = -1
        self._synced = 0
        self.access: BoolArray = np.zeros((0, 0), np.bool_)  # [N, G, M] GPU usable by typical pod m
        self.fit_count: IntArray = np.zeros((0, 0), np.int64)  # [N, M] GPUs that fit m
        self.fit_free: IntArray = np.zeros((0, 0), np.int64)  # [N, M] free milli on those GPUs
        self.idle: IntArray = np.zeros(0, np.int64)  # [N]
        self.frag: FloatArray = np.zeros(0, np.float64)  # [N] F_n
        # Nodes whose GPUs hold the same (model, free) multiset share a signature: candidates on them with the
        # same CPU outcome get the same answer, so `after` computes each distinct case once.
        self.signature: IntArray = np.zeros(0, np.int64)
        self._signature_ids: dict[tuple[int, ...], int] = {}
        self._cpu_thresholds = np.unique(self.cpu)

    # ------------------------------------------------------------------------------------------- sync
    def sync(self, cluster: ClusterState) -> None:
        if cluster.instance_id != self._cluster_id:
            self._rebuild(cluster)
            return
        changed = cluster.changed_nodes[self._synced :]
        if changed:
            self._update_rows(cluster, np.unique(np.array(changed, np.int64)))
            self._synced = len(cluster.changed_nodes)

    def _rebuild(self, cluster: ClusterState) -> None:
        n = cluster.size
        usable_gpu = cluster.gpu_present & ~cluster.gpu_mig & ~cluster.gpu_fenced
        model_ok = np.ones((len(cluster.models), len(self.pods)), np.bool_)
        for m, pod in enumerate(self.pods):
            if pod.models is not None:
                model_ok[:, m] = [model in pod.models for model in cluster.models]
        if len(cluster.models):
            self.access = usable_gpu[:, :, None] & model_ok[np.maximum(cluster.gpu_model, 0)]
        else:
            self.access = np.zeros((*usable_gpu.shape, len(self.pods)), np.bool_)
        self.access &= self.needs_gpu[None, None, :]
        self.fit_count = np.zeros((n, len(self.pods)), np.int64)
        self.fit_free = np.zeros((n, len(self.pods)), np.int64)
        self.idle = np.zeros(n, np.int64)
        self.frag = np.zeros(n, np.float64)
        self.signature = np.zeros(n, np.int64)
        self._usable_gpu = usable_gpu
        self._gpu_kind = np.where(usable_gpu, cluster.gpu_model, -1)
        homogeneous = [len(set(row[row >= 0].tolist())) <= 1 for row in self._gpu_kind]
        self._homogeneous = np.array(homogeneous, np.bool_)
        self._update_rows(cluster, np.arange(n))
        self._cluster_id = cluster.instance_id
        self._synced = len(cluster.changed_nodes)

    def _update_rows(self, cluster: ClusterState, rows: IntArray) -> None:
        free = np.where(self._usable_gpu[rows], cluster.gpu_free[rows], 0)  # [R, G]
        fits = self.access[rows] & (free[:, :, None] >= self.milli[None, None, :])  # [R, G, M]
        self.fit_count[rows] = fits.sum(axis=1)
        self.fit_free[rows] = (fits * free[:, :, None]).sum(axis=1)
        self.idle[rows] = free.sum(axis=1)
        self.frag[rows] = self._node_frag(
            cluster.cpu_free[rows], self.idle[rows], self.fit_count[rows], self.fit_free[rows]
        )
        for row, kinds, frees in zip(
            rows.tolist(), self._gpu_kind[rows].tolist(), free.tolist(), strict=True
        ):
            pairs = tuple(x for pair in sorted(zip(kinds, frees, strict=True)) for x in pair)
            # GPU order matters on mixed-model nodes (whole GPUs are taken lowest index first): never shared.
            key = pairs if self._homogeneous[row] else (-1 - row, *pairs)
            self.signature[row] = self._signature_ids.setdefault(key, len(self._signature_ids))

    def _node_frag(
        self, cpu_free: IntArray, idle: IntArray, fit_count: IntArray, fit_free: IntArray
    ) -> FloatArray:
        satisfied = (
            self.needs_gpu[None, :]
            & (cpu_free[:, None] >= self.cpu[None, :])
            & (fit_count >= self.count[None, :])
        )
        fragment = idle[:, None] - np.where(satisfied, fit_free, 0)
        result: FloatArray = fragment @ self.weight
        return result

    # ---------------------------------------------------------------------------------------- queries
    def total(self, cluster: ClusterState) -> float:
        """Σ F_n over the cluster, in milli-GPUs."""
        self.sync(cluster)
        return float(self.frag.sum())

    def after(self, cluster: ClusterState, candidates: Candidates) -> FloatArray:
        """F_n of each candidate's node as it would be after that placement."""
        self.sync(cluster)
        shape = candidates.shape
        cpu_after = cluster.cpu_free[candidates.node] - shape.cpu_milli
        cpu_case = np.searchsorted(self._cpu_thresholds, cpu_after, side="right")
        case = self.signature[candidates.node] * (len(self._cpu_thresholds) + 1) + cpu_case
        if shape.kind in ("share", "mig"):
            chosen = np.maximum(self._gpu_kind[candidates.node, candidates.gpu], -1) + 1
            case = (case * (len(cluster.models) + 1) + chosen) * 1001 + candidates.gpu_free
        _, first, inverse = np.unique(case, return_index=True, return_inverse=True)
        if len(first) == len(candidates):
            return self._after_each(cluster, candidates)
        result: FloatArray = self._after_each(cluster, candidates.subset(first))[inverse]
        return result

    def _after_each(self, cluster: ClusterState, candidates: Candidates) -> FloatArray:
        shape = candidates.shape
        nodes = candidates.node
        fit_count = self.fit_count[nodes].copy()
        fit_free = self.fit_free[nodes].copy()
        idle = self.idle[nodes].copy()
        if shape.kind == "whole":
            gpus = candidates.whole_gpus  # each goes from 1000 free to 0: it stops fitting anything
            access = self.access[nodes[:, None], gpus]  # [K, k, M]
            fit_count -= access.sum(axis=1)
            fit_free -= access.sum(axis=1) * 1000
            idle -= 1000 * gpus.shape[1]
        elif shape.kind in ("share", "mig"):
            before = candidates.gpu_free
            after = before - self._taken_milli(cluster, candidates)
            access = self.access[nodes, candidates.gpu]  # [K, M]
            fits_before = access & (before[:, None] >= self.milli[None, :])
            fits_after = access & (after[:, None] >= self.milli[None, :])
            fit_count += fits_after.astype(np.int64) - fits_before
            fit_free += np.where(fits_after, after[:, None], 0) - np.where(fits_before, before[:, None], 0)
            if shape.kind == "share":
                idle -= before - after
        cpu_free = cluster.cpu_free[nodes] - shape.cpu_milli
        return self._node_frag(cpu_free, idle, fit_count, fit_free)

    @staticmethod
    def _taken_milli(cluster: ClusterState, candidates: Candidates) -> IntArray:
        if candidates.shape.kind == "share":
            return np.full(len(candidates), candidates.shape.gpu_milli, np.int64)
        return np.zeros(len(candidates), np.int64)  # MIG GPUs are outside the FGD model
