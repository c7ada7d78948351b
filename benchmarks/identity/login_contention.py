"""How much a burst of failed logins slows an unrelated request, before and after the identity changes.

Starts `astrago server` from a source tree (this checkout, and optionally another commit checked out with
`git worktree`), then measures the latency of `POST /api/v1/workloads` by another user, first alone and
then while N clients send wrong passwords as fast as they can. Also measures how long a login takes for an
unknown user name and for a known one with a wrong password (the same time means names do not leak).

    .venv/bin/python benchmarks/identity/login_contention.py [--baseline REV] [--attackers 48] [--submits 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from tests.support.postgres import free_port  # noqa: E402

PASSWORD = "bench-password-1"
JOB = {"workspace": "default", "command": ["true"], "resources": {"cpu": "10m", "memory": "8Mi"}}


def start(src: Path, data: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(src),
        "ASTRAGO_DATA_DIR": str(data),
        "ASTRAGO_ADMIN_PASSWORD": PASSWORD,
        # the new throttle would refuse the burst early; measure the hashing itself
        "ASTRAGO_LOGIN_FAILURES_PER_ACCOUNT": "1000000",
        "ASTRAGO_LOGIN_FAILURES_PER_ADDRESS": "1000000",
    }
    args = [
        sys.executable,
        "-m",
        "astrago.cli.main",
        "server",
        "--port",
        str(port),
        "--simulate-gpus",
        "4xA100-80GB",
    ]
    process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError("server did not start")


async def submit_latencies(client: httpx.AsyncClient, token: str, n: int) -> list[float]:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        response = await client.post(
            "/api/v1/workloads", json=JOB, headers={"Authorization": f"Bearer {token}"}
        )
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 201, response.text
        await asyncio.sleep(0.05)
    return times


async def attack(client: httpx.AsyncClient, stop: asyncio.Event) -> int:
    count = 0
    while not stop.is_set():
        await client.post("/api/v1/auth/login", json={"username": "admin", "password": "wrong"})
        count += 1
    return count


async def login_ms(client: httpx.AsyncClient, username: str, n: int = 10) -> float:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        await client.post("/api/v1/auth/login", json={"username": username, "password": "wrong-password"})
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


async def measure(url: str, attackers: int, submits: int) -> dict[str, float]:
    limits = httpx.Limits(max_connections=attackers + 8)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:
        login = await client.post("/api/v1/auth/login", json={"username": "admin", "password": PASSWORD})
        token = login.json()["token"]
        unknown, wrong = await login_ms(client, "nobody-here"), await login_ms(client, "admin")
        alone = await submit_latencies(client, token, submits)
        stop = asyncio.Event()
        burst = [asyncio.create_task(attack(client, stop)) for _ in range(attackers)]
        await asyncio.sleep(1.0)
        loaded = await submit_latencies(client, token, submits)
        stop.set()
        await asyncio.gather(*burst)
    return {
        "submit_alone_median_ms": statistics.median(alone),
        "submit_under_burst_median_ms": statistics.median(loaded),
        "submit_under_burst_max_ms": max(loaded),
        "login_unknown_user_median_ms": unknown,
        "login_wrong_password_median_ms": wrong,
    }


def run(src: Path, attackers: int, submits: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as data:
        process, url = start(src, Path(data))
        try:
            return asyncio.run(measure(url, attackers, submits))
        finally:
            process.terminate()
            process.wait(15)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--baseline", help="a git revision to measure side by side (checked out in .work/)")
    parser.add_argument("--attackers", type=int, default=48)
    parser.add_argument("--submits", type=int, default=30)
    args = parser.parse_args()
    results = {}
    if args.baseline:
        tree = REPO / "benchmarks/identity/.work/baseline"
        if tree.exists():
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO, check=True)
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), args.baseline], cwd=REPO, check=True)
        try:
            results[f"baseline {args.baseline}"] = run(tree / "src", args.attackers, args.submits)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO, check=True)
    results["this checkout"] = run(REPO / "src", args.attackers, args.submits)
    print(json.dumps({"load_before": os.getloadavg(), "results": results}, indent=2))


if __name__ == "__main__":
    main()
