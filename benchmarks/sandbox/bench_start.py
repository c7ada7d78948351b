"""What the workload sandbox costs a job: start-to-end time of `/bin/true` through the real LocalBackend,
sandboxed (bubblewrap) and unsandboxed (single-user mode), measured alternately in the same run.

    .venv/bin/python -m benchmarks.sandbox.bench_start [--runs 30]

Each run starts one workload and waits for its outcome on `watch()`: spawning the runner, the sandbox
(bwrap + its init, as root also the uid switch), the command, and the exit report."""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

from astrago.backends.base import LaunchSpec, ReplicaLaunch
from astrago.backends.local import LocalBackend
from astrago.backends.local.inventory import node_name
from astrago.config import Settings
from astrago.domain.enums import ReplicaState, WorkloadKind

ENDED = {ReplicaState.SUCCEEDED, ReplicaState.FAILED, ReplicaState.STOPPED, ReplicaState.LOST}


async def one_run(backend: LocalBackend, workload_id: str) -> float:
    replica = ReplicaLaunch(index=0, node=node_name(), cpu_milli=100, memory_mib=64)
    spec = LaunchSpec(workload_id, workload_id, "bench", WorkloadKind.JOB, (replica,), command=("/bin/true",))
    stream = backend.watch()  # subscribed before the start: nothing is missed
    started = time.perf_counter()
    await backend.start(spec)
    async for observation in stream:
        if observation.workload_id == workload_id and observation.state in ENDED:
            assert observation.state is ReplicaState.SUCCEEDED, observation.reason
            break
    return time.perf_counter() - started


async def main(runs: int) -> None:
    with tempfile.TemporaryDirectory() as root:
        backends = {
            "sandboxed": LocalBackend(Settings(data_dir=Path(root) / "a", simulate_gpus="1xA100-80GB")),
            "unsandboxed": LocalBackend(
                Settings(data_dir=Path(root) / "b", simulate_gpus="1xA100-80GB", sandbox_bwrap="none")
            ),
        }
        for backend in backends.values():
            await backend.open()
        times: dict[str, list[float]] = {name: [] for name in backends}
        for run in range(runs + 2):
            for name, backend in backends.items():  # alternate, so load changes hit both alike
                elapsed = await one_run(backend, f"{name}-{run}")
                if run >= 2:  # the first two warm the page cache
                    times[name].append(elapsed)
        for backend in backends.values():
            await backend.close()
    base = statistics.median(times["unsandboxed"])
    print(f"runs: {runs} each, as uid {os.geteuid()}, load average {os.getloadavg()[0]:.1f}")
    print("| mode | median | p90 | ratio |")
    print("|---|---|---|---|")
    for name, values in times.items():
        p90 = statistics.quantiles(values, n=10)[-1]
        median = statistics.median(values)
        print(f"| {name} | {median * 1000:.0f} ms | {p90 * 1000:.0f} ms | {median / base:.2f}x |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    asyncio.run(main(parser.parse_args().runs))
