"""`fgd`: Fragmentation Gradient Descent (Weng et al., USENIX ATC'23).

Each candidate scores by how much it lowers its node's fragmentation F_n (see
`astrago.scheduler.fragmentation`): 100·sigmoid(ΔF/1000), truncated to an integer like the reference
simulator. A GPU share tries every GPU of the node and keeps the best.

The typical pods come from the workload when one is given (the simulator passes the trace). A live
scheduler has no trace: then the policy learns them from the requests it has been asked to place so far,
refreshing the set whenever the number seen doubles or a new shape appears."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from astrago.domain.resources import ResourceRequest
from astrago.scheduler.candidates import Candidates, GpuChoice
from astrago.scheduler.cluster import ClusterState, FloatArray, RequestShape
from astrago.scheduler.fragmentation import FragmentationTracker, typical_pods
from astrago.scheduler.placement.base import PlacementPolicy


class FragmentationAwarePolicy(PlacementPolicy):
    """Shared by FGD and the policies built on it: owns the typical pods and the tracker."""

    gpu_choice = GpuChoice.EACH

    def __init__(self, seed: int = 0, workload: Sequence[ResourceRequest] | None = None) -> None:
        super().__init__(seed)
        self._learning = workload is None
        self._seen: Counter[ResourceRequest] = Counter()
        self._seen_at_refresh = 0
        self.tracker = FragmentationTracker(typical_pods(workload or ()))

    def fragmentation_decrease(self, cluster: ClusterState, candidates: Candidates) -> FloatArray:
        """F_n before minus F_n after, per candidate (positive: the placement reduces fragmentation)."""
        if self._learning:
            self._learn(candidates.shape)
        self.tracker.sync(cluster)
        before = self.tracker.frag[candidates.node]
        result: FloatArray = before - self.tracker.after(cluster, candidates)
        return result

    def _learn(self, shape: RequestShape) -> None:
        request = _request_of(shape)
        new_shape = request not in self._seen
        self._seen[request] += 1
        total = self._seen.total()
        if new_shape or total >= 2 * self._seen_at_refresh:
            self._seen_at_refresh = total
            self.tracker = FragmentationTracker(typical_pods(self._seen.elements()))


def _request_of(shape: RequestShape) -> ResourceRequest:
    models = "|".join(sorted(shape.models)) if shape.models else None
    if shape.kind == "share":
        return ResourceRequest(shape.cpu_milli, 0, gpu_model=models, gpu_share_milli=shape.gpu_milli)
    if shape.kind == "mig":
        return ResourceRequest(shape.cpu_milli, 0, gpu_model=models, mig_profile=shape.mig_profile)
    return ResourceRequest(shape.cpu_milli, 0, gpus=shape.gpus, gpu_model=models)


def sigmoid(x: FloatArray) -> FloatArray:
    result: FloatArray = 1.0 / (1.0 + np.exp(-x))
    return result


class FgdPolicy(FragmentationAwarePolicy):
    name = "fgd"
    description = "largest decrease of expected GPU fragmentation (FGD, ATC'23)"

    def scores(self, cluster: ClusterState, candidates: Candidates) -> FloatArray:
        return np.floor(100 * sigmoid(self.fragmentation_decrease(cluster, candidates) / 1000))
