"""`dotprod`: Tetris-style packing, the FGD paper's DotProd baseline.

Score = 100 · (1 − ½·⟨free, request⟩) with both vectors [cpu, gpu] normalised by the largest node spec:
the node whose free resources align least with the request is the tightest fit. For a GPU share, each
partly used GPU that fits is a candidate with its own free milli, and the node's fully free GPUs count as one
candidate with their summed milli, as in the reference simulator."""

from __future__ import annotations

import numpy as np

from astrago.scheduler.candidates import Candidates, GpuChoice
from astrago.scheduler.cluster import WHOLE_GPU_MILLI, ClusterState, FloatArray
from astrago.scheduler.placement.base import PlacementPolicy
from astrago.scheduler.placement.bestfit import REFERENCE_MAX_CPU_MILLI, REFERENCE_MAX_GPU_MILLI


class DotProductPolicy(PlacementPolicy):
    name = "dotprod"
    description = "smallest dot product of free resources and request (Tetris)"
    gpu_choice = GpuChoice.EACH

    def scores(self, cluster: ClusterState, candidates: Candidates) -> FloatArray:
        shape = candidates.shape
        nodes = candidates.node
        max_cpu = max(REFERENCE_MAX_CPU_MILLI, int(cluster.cpu_capacity.max(initial=0)))
        max_gpu = max(REFERENCE_MAX_GPU_MILLI, cluster.gpu_slots * 1000)
        fully_free = (cluster.gpu_free[nodes] == WHOLE_GPU_MILLI) & cluster.gpu_present[nodes]
        idle_group = fully_free.sum(axis=1) * WHOLE_GPU_MILLI
        if shape.kind in ("share", "mig"):
            gpu_free = np.where(candidates.gpu_free >= WHOLE_GPU_MILLI, idle_group, candidates.gpu_free)
        elif shape.kind == "whole":
            gpu_free = idle_group
        else:
            gpu_free = np.zeros(len(candidates), np.int64)
        dot = (cluster.cpu_free[nodes] / max_cpu) * (shape.cpu_milli / max_cpu) + (gpu_free / max_gpu) * (
            shape.total_gpu_milli / max_gpu
        )
        return np.floor(100 * (1 - dot / 2))
