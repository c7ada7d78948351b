r"""Latency of one `schedule()` call on a live-size snapshot: what the server's scheduling loop pays.

    nice .venv/bin/python benchmarks/scheduler/replay_schedule_latency.py --nodes 100 --pending 2000

The snapshot: `--nodes` nodes with 8 A100 GPUs, 64 cores and 512 GiB each; 8 workspaces, each guaranteed an
eighth of the GPUs with a limit of twice that; the cluster about 90% full of 1- and 2-GPU jobs (some of them
borrowed, so preemption has candidates); `--pending` waiting workloads of mixed shapes (1, 2, 4 and 8 GPUs,
GPU shares, 2-replica gangs) and priorities. Everything is drawn with a fixed seed. Each call builds the
state from the snapshot, as the server's loop does. Reports the median and max CPU time of `--repeat`
calls."""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from astrago.domain.resources import ResourceRequest
from astrago.scheduler import schedule
from astrago.scheduler.types import (
    GpuInfo,
    NodeInfo,
    Quota,
    ReplicaPlacement,
    RunningWorkload,
    SchedulerConfig,
    Snapshot,
    WorkloadRequest,
)

WORKSPACES = [f"team-{i}" for i in range(8)]


def build(nodes: int, pending: int, seed: int) -> Snapshot:
    rng = np.random.default_rng(seed)
    cluster = tuple(
        NodeInfo(f"node-{i:04d}", 64_000, 512 * 1024, tuple(GpuInfo(g, "A100") for g in range(8)))
        for i in range(nodes)
    )
    share = nodes * 8 // len(WORKSPACES) * 1000
    quotas = tuple((ws, Quota(gpu_guaranteed_milli=share, gpu_limit_milli=2 * share)) for ws in WORKSPACES)
    running: list[RunningWorkload] = []
    for index, node in enumerate(cluster):
        gpu = 0
        while gpu < 8 and rng.random() < 0.9:
            width = min(int(rng.choice([1, 2])), 8 - gpu)
            workspace = WORKSPACES[int(rng.integers(0, 3))]  # three teams borrow, the others idle
            request = WorkloadRequest(
                f"run-{index}-{gpu}",
                workspace,
                ResourceRequest(4000, 32 * 1024, gpus=width),
                submitted_seq=-1,
            )
            placement = ReplicaPlacement(node.name, 4000, 32 * 1024, tuple(range(gpu, gpu + width)), 1000)
            running.append(RunningWorkload(request, (placement,), started_seq=len(running)))
            gpu += width
    shapes = [
        (ResourceRequest(4000, 32 * 1024, gpus=1), 1),
        (ResourceRequest(8000, 64 * 1024, gpus=2), 1),
        (ResourceRequest(16000, 128 * 1024, gpus=4), 1),
        (ResourceRequest(32000, 256 * 1024, gpus=8), 1),
        (ResourceRequest(2000, 8 * 1024, gpu_share_milli=500), 1),
        (ResourceRequest(8000, 64 * 1024, gpus=4), 2),
    ]
    waiting = []
    for i in range(pending):
        request, replicas = shapes[int(rng.integers(0, len(shapes)))]
        waiting.append(
            WorkloadRequest(
                f"wait-{i}",
                WORKSPACES[int(rng.integers(0, len(WORKSPACES)))],
                request,
                replicas=replicas,
                priority=int(rng.choice([0, 0, 0, 1, 2])),
                submitted_seq=i,
            )
        )
    return Snapshot(cluster, tuple(running), tuple(waiting), quotas)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--pending", type=int, default=2000)
    parser.add_argument("--policies", default="bestfit,astra")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    snapshot = build(args.nodes, args.pending, args.seed)
    print(
        f"{args.nodes} nodes, {len(snapshot.running)} running, {len(snapshot.pending)} pending, "
        f"{len(WORKSPACES)} workspaces"
    )
    print("| policy | median ms | max ms | admitted | preempted | pending |")
    print("|---|---|---|---|---|---|")
    for policy in args.policies.split(","):
        timings = []
        for _ in range(args.repeat):
            started = time.process_time()
            decisions = schedule(snapshot, SchedulerConfig(policy=policy))
            timings.append(1000 * (time.process_time() - started))
        print(
            f"| {policy} | {statistics.median(timings):.0f} | {max(timings):.0f} | {len(decisions.admit)} "
            f"| {len(decisions.preempt)} | {len(decisions.pending)} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
