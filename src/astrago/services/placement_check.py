"""Refuses at submission what no node could ever hold, with the reason (instead of queueing forever)."""

from __future__ import annotations

from functools import lru_cache

from astrago.domain.resources import ResourceRequest
from astrago.scheduler.cluster import ClusterState
from astrago.scheduler.explain import never_fits_message
from astrago.scheduler.types import NodeInfo


@lru_cache(maxsize=256)
def unplaceable(nodes: tuple[NodeInfo, ...], request: ResourceRequest) -> str | None:
    """Cached on the (hashable, immutable) node view and request: most submissions repeat both."""
    if not nodes:
        return "no nodes are registered yet; wait for the server to finish starting and try again"
    if request.gpu_milli and not any(node.gpus for node in nodes):
        return "this platform has no GPUs (start the server with --simulate-gpus to try GPU workloads)"
    cluster = ClusterState.from_nodes(nodes)
    if cluster.can_ever_fit(request):
        return None
    return f"no node could ever run one replica of this workload: {never_fits_message(cluster, request)}"
