"""The server's CPU per submission, two versions of the code side by side (see README.md, "Submit path").

Each round starts one server per version (its `src` folder on PYTHONPATH, in a fresh data dir), submits
`--submissions` workloads from `--concurrency` clients, and reads the server process's own CPU time
(user + system, without the jobs it starts) before and after: CPU seconds per submission is the figure
the machine's load moves least. The versions alternate within each round so that a noisy moment hits
both. With `--no-scheduling` the servers run without their scheduling step (`launch_server.py`), which
isolates the request path from the scheduling cycle's share of the same event loop.

    mkdir -p benchmarks/api/.work/before && git archive <commit> src | tar -x -C benchmarks/api/.work/before
    .venv/bin/python benchmarks/api/submit_cpu.py --before benchmarks/api/.work/before/src --after src \
        --no-scheduling

(Not under /tmp: the jobs that do start run in a sandbox with a private /tmp, where that code is not.)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil
from server_process import ServerProcess, free_port, stop_processes_mentioning

HERE = Path(__file__).resolve().parent
WORKLOAD = {
    "workspace": "bench",
    "command": ["sleep", "3600"],
    "resources": {"cpu": "100m", "memory": "64Mi", "gpus": 1},
    "max_runtime": "30m",
}


async def _submit_all(base_url: str, token: str, count: int, concurrency: int) -> list[float]:
    latencies: list[float] = []
    remaining = count
    limits = httpx.Limits(max_connections=concurrency)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, limits=limits, timeout=60) as client:

        async def one_client() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                started = time.perf_counter()
                (await client.post("/api/v1/workloads", json=WORKLOAD)).raise_for_status()
                latencies.append(time.perf_counter() - started)

        await asyncio.gather(*(one_client() for _ in range(concurrency)))
    return sorted(latencies)


def _run(src: Path, args: argparse.Namespace) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="astrago-submit-cpu-") as work:
        data_dir = Path(work) / "data"
        port, password = free_port(), secrets.token_urlsafe(16)
        env = {
            **os.environ,
            "PYTHONPATH": str(src),
            "ASTRAGO_DATA_DIR": str(data_dir),
            "ASTRAGO_ADMIN_PASSWORD": password,
        }
        launcher = [sys.executable, str(HERE / "launch_server.py")]
        if args.no_scheduling:
            launcher.append("--no-scheduling")
        argv = [*launcher, "server", "--port", str(port), "--simulate-gpus", "4xA100-80GB"]
        server = ServerProcess(argv, env, Path(work) / "server.log")
        base_url = f"http://127.0.0.1:{port}"
        try:
            server.start_and_wait(lambda: _ready(base_url))
            login = {"username": "admin", "password": password}
            token = httpx.post(f"{base_url}/api/v1/auth/login", json=login).raise_for_status().json()["token"]
            auth = {"Authorization": f"Bearer {token}"}
            httpx.post(
                f"{base_url}/api/v1/workspaces", json={"name": "bench"}, headers=auth
            ).raise_for_status()
            process = psutil.Process(server.pid)
            before, started = process.cpu_times(), time.perf_counter()
            latencies = asyncio.run(_submit_all(base_url, token, args.submissions, args.concurrency))
            elapsed, after = time.perf_counter() - started, process.cpu_times()
        finally:
            server.stop()
            stop_processes_mentioning(str(data_dir))  # the jobs that run outlive the server by design
        cpu = (after.user + after.system) - (before.user + before.system)
        return {
            "server_cpu_ms_per_submit": 1000 * cpu / args.submissions,
            "submits_per_s": args.submissions / elapsed,
            "latency_p50_ms": 1000 * latencies[len(latencies) // 2],
            "latency_p99_ms": 1000 * latencies[int(len(latencies) * 0.99)],
            "load_average_1m": os.getloadavg()[0],
        }


def _ready(base_url: str) -> bool:
    try:
        return httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, required=True, help="the src folder of the first version")
    parser.add_argument("--after", type=Path, required=True, help="the src folder of the second version")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--submissions", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--no-scheduling", action="store_true", help="servers without their scheduling step")
    args = parser.parse_args()
    runs: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    for round_ in range(args.rounds):
        for name in ("before", "after"):
            result = _run(getattr(args, name).resolve(), args)
            runs[name].append(result)
            print(json.dumps({"round": round_ + 1, "version": name, **result}), file=sys.stderr, flush=True)
    medians = {
        name: {key: statistics.median(r[key] for r in results) for key in results[0]}
        for name, results in runs.items()
    }
    print(
        json.dumps(
            {
                "settings": vars(args) | {"before": str(args.before), "after": str(args.after)},
                "runs": runs,
                "medians": medians,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
