"""Fill mode: the FGD paper's protocol (Weng et al., USENIX ATC'23, §6), with any placement policy.

Per seed: shuffle the trace's pods, then append pods drawn uniformly with replacement until the total GPU
request reaches `tune` × cluster capacity. Each pod is tried once, in order, by the same `place` the live
scheduler uses; a pod that fits nowhere fails (no queue, no retry, no departures). After every pod,
arrived = GPU milli of all pods tried so far and allocated = GPU milli placed, both as % of capacity.
A ratio "at X%" is the mean over the events whose arrived % lies in the integer bucket X, then the mean over
seeds. Fragmentation uses the trace's typical pods (`astrago.scheduler.fragmentation`)."""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from astrago.domain.resources import ResourceRequest
from astrago.scheduler import mig
from astrago.scheduler.cluster import ClusterState, RequestShape
from astrago.scheduler.fragmentation import FragmentationTracker, typical_pods
from astrago.scheduler.placement import get_policy, place
from astrago.scheduler.types import NodeInfo
from astrago.sim.traces import TracePod

DEFAULT_TUNE = 1.3
DEFAULT_SEEDS = tuple(range(42, 52))
FRAG_FROM_BUCKET = 95  # fragmentation is measured from here on (it is reported at 100%)


def gpu_demand_milli(request: ResourceRequest) -> int:
    """GPU milli a request counts for in arrival totals; a MIG slice counts as its share of the GPU."""
    if request.mig_profile:
        for family in mig.MIG_FAMILIES:
            profile = family.profile(request.mig_profile)
            if profile is not None:
                return profile.size * 1000 // family.slices
        return 0
    return request.gpu_milli


def pod_type(request: ResourceRequest) -> str:
    """The label failed pods are counted under: cpu, share, mig, or "<k>-gpu"."""
    kind = RequestShape.of(request).kind
    if kind == "whole":
        return f"{request.gpus}-gpu"
    return kind


def inflate(pods: Sequence[TracePod], capacity_milli: int, tune: float, seed: int) -> list[ResourceRequest]:
    """The seed's arrival order: the trace shuffled, then uniform draws with replacement until the GPU
    request reaches `tune` × capacity (the draw that crosses it is kept, so the last bucket has events)."""
    rng = np.random.default_rng(seed)
    order = [pods[i].request for i in rng.permutation(len(pods))]
    target = tune * capacity_milli
    total = sum(gpu_demand_milli(request) for request in order)
    if not any(gpu_demand_milli(pod.request) for pod in pods):
        return order  # a CPU-only trace cannot reach a GPU target
    while total < target:
        request = pods[int(rng.integers(len(pods)))].request
        order.append(request)
        total += gpu_demand_milli(request)
    return order


@dataclass(slots=True)
class SeedResult:
    seed: int
    curve: list[float]  # allocated % per integer arrived % bucket 0..last
    frag_ratio_at_100: float  # Σ F_n as % of capacity, at arrived 100%
    frag_ratio_empty: float  # the same on the empty cluster
    failed: dict[str, int]
    pods: int
    placed: int
    seconds: float

    def at(self, percent: int) -> float:
        """Allocated % at arrived `percent` (NaN past the end of this run's arrivals)."""
        return self.curve[percent] if 0 <= percent < len(self.curve) else float("nan")


class _Buckets:
    """Mean of a value per integer arrived-% bucket, filled forward over buckets no event landed in."""

    def __init__(self, last: int) -> None:
        self.sums = np.zeros(last + 1)
        self.counts = np.zeros(last + 1, np.int64)

    def add(self, bucket: int, value: float) -> None:
        if bucket < len(self.sums):
            self.sums[bucket] += value
            self.counts[bucket] += 1

    def means(self, start: float = 0.0) -> list[float]:
        values, current = [], start
        for total, count in zip(self.sums, self.counts, strict=True):
            if count:
                current = float(total / count)
            values.append(current)
        return values


def run_seed(
    nodes: Sequence[NodeInfo], pods: Sequence[TracePod], policy_name: str, seed: int, tune: float
) -> SeedResult:
    workload = [pod.request for pod in pods]
    cluster = ClusterState.from_nodes(nodes)
    capacity = cluster.gpu_capacity_milli
    if capacity == 0:
        raise ValueError("the cluster has no GPUs: fill mode measures GPU allocation")
    policy = get_policy(policy_name, seed=seed, workload=workload)
    measure = FragmentationTracker(typical_pods(workload))
    frag_empty = 100 * measure.total(cluster) / capacity
    arrivals = inflate(pods, capacity, tune, seed)
    last_bucket = math.ceil(tune * 100)
    allocation = _Buckets(last_bucket)
    fragmentation = _Buckets(100)
    failed: Counter[str] = Counter()
    arrived = allocated = placed = 0
    started = time.perf_counter()
    for request in arrivals:
        placement = place(cluster, request, policy)
        demand = gpu_demand_milli(request)
        arrived += demand
        if placement is None:
            failed[pod_type(request)] += 1
        else:
            cluster.apply(placement)
            allocated += demand
            placed += 1
        bucket = int(100 * arrived // capacity)
        allocation.add(bucket, 100 * allocated / capacity)
        if FRAG_FROM_BUCKET <= bucket <= 100:  # filled forward: a pod may jump over bucket 100
            fragmentation.add(bucket, 100 * measure.total(cluster) / capacity)
    seconds = time.perf_counter() - started
    return SeedResult(
        seed=seed,
        curve=allocation.means(),
        frag_ratio_at_100=fragmentation.means(start=float("nan"))[100],
        frag_ratio_empty=frag_empty,
        failed=dict(failed),
        pods=len(arrivals),
        placed=placed,
        seconds=seconds,
    )


@dataclass(slots=True)
class FillReport:
    policy: str
    seeds: list[int]
    tune: float
    gpus: int
    results: list[SeedResult] = field(default_factory=list)

    def _mean(self, values: Sequence[float]) -> float:
        finite = [v for v in values if not math.isnan(v)]
        return round(float(np.mean(finite)), 4) if finite else float("nan")

    def alloc_at(self, percent: int) -> float:
        return self._mean([r.at(percent) for r in self.results])

    def to_json(self) -> dict[str, Any]:
        """The report's JSON document (keys documented in docs/simulator.md)."""
        last = min(len(r.curve) for r in self.results)
        curve = [[p, self._mean([r.curve[p] for r in self.results])] for p in range(last)]
        alloc_130 = self.alloc_at(130)
        frag_100 = self._mean([r.frag_ratio_at_100 for r in self.results])
        failed_types = sorted({key for r in self.results for key in r.failed})
        pods = sum(r.pods for r in self.results)
        seconds = sum(r.seconds for r in self.results)
        return _finite_or_none(
            {
                "policy": self.policy,
                "seeds": self.seeds,
                "tune": self.tune,
                "gpus": self.gpus,
                "alloc_ratio_at_100": self.alloc_at(100),
                "alloc_ratio_at_130": alloc_130,
                "unallocated_gpus_at_130": round(self.gpus * (1 - alloc_130 / 100), 2),  # NaN → null
                "frag_ratio_at_100": frag_100,
                "frag_amount_at_100": round(self.gpus * frag_100 / 100, 2),
                "frag_ratio_empty": self._mean([r.frag_ratio_empty for r in self.results]),
                "curve": curve,
                "failed_pods_by_type": {
                    key: self._mean([r.failed.get(key, 0) for r in self.results]) for key in failed_types
                },
                "pods_per_seed": self._mean([r.pods for r in self.results]),
                "placements_per_second": round(pods / seconds, 1) if seconds else None,
                "per_seed": [
                    {
                        "seed": r.seed,
                        "alloc_ratio_at_100": round(r.at(100), 4),
                        "alloc_ratio_at_130": round(r.at(130), 4),
                        "frag_ratio_at_100": round(r.frag_ratio_at_100, 4),
                        "failed_pods": sum(r.failed.values()),
                        "seconds": round(r.seconds, 2),
                    }
                    for r in self.results
                ],
            }
        )


def _finite_or_none(value: Any) -> Any:
    """JSON has no NaN: a metric the run did not reach (e.g. 130% with --tune 1.2) becomes null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: _finite_or_none(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite_or_none(item) for item in value]
    return value


def fill(
    nodes: Sequence[NodeInfo],
    pods: Sequence[TracePod],
    policy_name: str,
    seeds: Sequence[int] = DEFAULT_SEEDS,
    tune: float = DEFAULT_TUNE,
    workers: int = 1,
) -> FillReport:
    """Run the protocol for every seed (in `workers` processes) and collect the report."""
    get_policy(policy_name)  # unknown names fail before any work starts
    gpus = sum(1 for node in nodes for gpu in node.gpus if gpu.healthy)
    report = FillReport(policy=policy_name, seeds=list(seeds), tune=tune, gpus=gpus)
    if workers <= 1 or len(seeds) <= 1:
        report.results = [run_seed(nodes, pods, policy_name, seed, tune) for seed in seeds]
    else:
        with ProcessPoolExecutor(max_workers=min(workers, len(seeds))) as pool:
            futures = [pool.submit(run_seed, nodes, pods, policy_name, seed, tune) for seed in seeds]
            report.results = [future.result() for future in futures]
    return report
