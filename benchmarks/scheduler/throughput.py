r"""Placement throughput on scaled openb clusters: placements per second for the openb pod mix.

    nice .venv/bin/python benchmarks/scheduler/throughput.py --nodes 1000,5000,10000 \
        --policies astra,fgd,bestfit

The openb GPU node list (1,213 nodes) is tiled (with new names) to the requested size. Pods are drawn
with a fixed seed from the default openb pod list. Each measurement first fills the empty cluster to
`--fill` of its GPU capacity with `bestfit` (untimed), so the timed placements see a partly used cluster,
then times `--pods` calls of `place` + `apply` with the measured policy (failed placements count too: the
scheduler did the work). The clock is the process's CPU time (the machine is shared); one process, one
thread: the figure is per core."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from astrago.domain.resources import ResourceRequest
from astrago.scheduler.cluster import ClusterState
from astrago.scheduler.placement import get_policy, place
from astrago.scheduler.types import NodeInfo
from astrago.sim.fill import gpu_demand_milli
from astrago.sim.traces import read_nodes, read_pods

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "openb"


def scaled_nodes(base: list[NodeInfo], size: int) -> list[NodeInfo]:
    return [
        NodeInfo(f"{base[i % len(base)].name}-{i // len(base)}", b.cpu_milli, b.memory_mib, b.gpus)
        for i in range(size)
        for b in (base[i % len(base)],)
    ]


def measure(
    nodes: list[NodeInfo], requests: list[ResourceRequest], policy_name: str, fill: float, timed: int
) -> tuple[float, int]:
    cluster = ClusterState.from_nodes(nodes)
    target = fill * cluster.gpu_capacity_milli
    stream = iter(requests * 100)
    filler = get_policy("bestfit", seed=1)  # the untimed fill only needs to be cheap
    allocated = 0
    while allocated < target:
        request = next(stream)
        placement = place(cluster, request, filler)
        if placement is not None:
            cluster.apply(placement)
            allocated += gpu_demand_milli(request)
    policy = get_policy(policy_name, seed=1, workload=requests)
    place(cluster, requests[0], policy)  # builds the policy's per-cluster tables outside the timing
    placed = 0
    started = time.process_time()  # CPU time: the machine is shared, wall time is not ours
    for _ in range(timed):
        placement = place(cluster, next(stream), policy)
        if placement is not None:
            cluster.apply(placement)
            placed += 1
    return timed / (time.process_time() - started), placed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nodes", default="1000,5000,10000")
    parser.add_argument("--policies", default="astra,fgd,bestfit")
    parser.add_argument("--fill", type=float, default=0.5, help="GPU allocation reached before timing")
    parser.add_argument("--pods", type=int, default=2000, help="placements timed per measurement")
    args = parser.parse_args()
    node_file, pod_file = DATA / "openb_node_list_gpu_node.csv", DATA / "openb_pod_list_default.csv"
    base = read_nodes(node_file.read_text(), str(node_file))
    pods = read_pods(pod_file.read_text(), str(pod_file))
    rng = np.random.default_rng(7)
    print("| nodes | policy | placements/s | placed of timed |")
    print("|---|---|---|---|")
    for size in (int(n) for n in args.nodes.split(",")):
        nodes = scaled_nodes(base, size)
        requests = [pods[i].request for i in rng.integers(len(pods), size=len(pods))]
        for policy in args.policies.split(","):
            rate, placed = measure(nodes, requests, policy, args.fill, args.pods)
            print(f"| {size} | {policy} | {rate:,.0f} | {placed}/{args.pods} |", flush=True)


if __name__ == "__main__":
    main()
