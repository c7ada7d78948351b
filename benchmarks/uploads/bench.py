"""Upload throughput: the same bytes written straight to the volumes' disk vs. sent through the API with
`astrago upload` (TUS, sha256 per 16 MiB chunk, fsync before every acknowledged offset), one file and
four files in parallel, and what a resume costs. See README.md for the command and the figures."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support.postgres import free_port  # noqa: E402

ASTRAGO = [sys.executable, "-m", "astrago.cli.main"]
PASSWORD = "bench-password-1"
CHUNK = 16 * 1024 * 1024
MB = 1000 * 1000


def make_source(path: Path, size: int) -> None:
    """Random bytes (incompressible), written once and reused by every measurement."""
    piece = os.urandom(CHUNK)
    with path.open("wb") as out:
        written = 0
        while written < size:
            count = min(CHUNK, size - written)
            out.write(piece[:count] if count < CHUNK else piece)
            written += count


def direct_copy(sources: list[Path], target_dir: Path) -> float:
    """What a local copy onto the same disk costs with the same durability (fsync every 16 MiB)."""
    target_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    for source in sources:
        with source.open("rb") as src, (target_dir / source.name).open("wb") as dst:
            while data := src.read(CHUNK):
                dst.write(data)
                dst.flush()
                os.fsync(dst.fileno())
    elapsed = time.perf_counter() - start
    shutil.rmtree(target_dir)
    return elapsed


class Server:
    def __init__(self, work: Path) -> None:
        self.data = work / "server"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "ASTRAGO_DATA_DIR": str(self.data), "ASTRAGO_ADMIN_PASSWORD": PASSWORD}
        self.data.mkdir(parents=True)
        self.process = subprocess.Popen(
            [*ASTRAGO, "server", "--port", str(self.port), "--simulate-gpus", "1xA100-80GB"],
            env=env,
            stdout=(work / "server.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError("the server did not start")

    def cpu_s(self) -> float:
        times = psutil.Process(self.process.pid).cpu_times()
        return times.user + times.system

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def client_cpu_s() -> float:
    """CPU time of finished child processes (the CLI runs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class Client:
    def __init__(self, server: Server, home: Path) -> None:
        self.server = server
        self.cpu: list[tuple[float, float]] = []  # (server, CLI) CPU seconds of each API upload
        self.env = {**os.environ, "XDG_CONFIG_HOME": str(home), "ASTRAGO_URL": server.url}
        subprocess.run(
            [*ASTRAGO, "login", "--url", server.url, "--username", "admin", "--password-stdin"],
            input=PASSWORD,
            text=True,
            env=self.env,
            check=True,
            capture_output=True,
        )
        self.run("workspace", "create", "bench")

    def run(self, *args: str) -> None:
        subprocess.run([*ASTRAGO, *args], env=self.env, check=True, capture_output=True)

    def upload(self, sources: list[Path], volume: str, parallel: int) -> float:
        self.run("volume", "create", volume, "-w", "bench")
        folder = sources[0].parent if len(sources) > 1 else sources[0]
        server_cpu, cli_cpu = self.server.cpu_s(), client_cpu_s()
        start = time.perf_counter()
        self.run("upload", str(folder), f"{volume}:/", "-w", "bench", "--parallel", str(parallel))
        elapsed = time.perf_counter() - start
        self.cpu.append((self.server.cpu_s() - server_cpu, client_cpu_s() - cli_cpu))
        self.run("volume", "rm", volume, "-w", "bench", "--yes")
        return elapsed

    def interrupted_upload(self, source: Path, volume: str, parts: Path) -> dict[str, float]:
        """Kill the CLI at half-way, run the same command again; how much longer than one clean run."""
        self.run("volume", "create", volume, "-w", "bench")
        command = [*ASTRAGO, "upload", str(source), f"{volume}:/", "-w", "bench", "--parallel", "1"]
        size = source.stat().st_size
        start = time.perf_counter()
        first = subprocess.Popen(command, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        received = 0
        while received < size // 2:
            time.sleep(0.05)
            received = max((p.stat().st_size for p in parts.iterdir()), default=0)
        first.send_signal(signal.SIGKILL)
        first.wait()
        received_at_kill = max((p.stat().st_size for p in parts.iterdir()), default=0)
        killed_at = time.perf_counter()
        subprocess.run(command, env=self.env, check=True, capture_output=True)
        done = time.perf_counter()
        self.run("volume", "rm", volume, "-w", "bench", "--yes")
        return {
            "first_run_s": killed_at - start,
            "second_run_s": done - killed_at,
            "total_s": done - start,
            "received_at_kill": received_at_kill,
        }


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while data := source.read(CHUNK):
            digest.update(data)
    return digest.hexdigest()


def median(samples: list[float]) -> float:
    return statistics.median(samples)


def measure(repeats: int, action: Callable[[], float]) -> list[float]:
    return [action() for _ in range(repeats)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=2 * 1024**3, help="bytes per measurement (2 GiB)")
    parser.add_argument("--repeats", type=int, default=3, help="samples per figure (medians reported)")
    parser.add_argument("--work", type=Path, default=None, help="work folder (default: a temp folder)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="astrago-upload-bench-", dir=args.work))
    try:
        single = work / "single" / "one.bin"
        single.parent.mkdir()
        make_source(single, args.size)
        quarters = [work / "four" / f"part-{i}.bin" for i in range(4)]
        quarters[0].parent.mkdir()
        for quarter in quarters:
            make_source(quarter, args.size // 4)
        server = Server(work)
        try:
            client = Client(server, work / "home")
            volumes = server.data / "volumes"
            load_before = os.getloadavg()
            rows: dict[str, list[float]] = {"direct 1": [], "api 1": [], "direct 4": [], "api 4": []}
            resumes = []
            for round_ in range(args.repeats):  # interleaved, so a noisy moment hits every figure alike
                rows["direct 1"].append(direct_copy([single], volumes / "direct"))
                rows["api 1"].append(client.upload([single], f"one-{round_}", 1))
                rows["direct 4"].append(direct_copy(quarters, volumes / "direct"))
                rows["api 4"].append(client.upload(quarters, f"four-{round_}", 4))
                resumes.append(client.interrupted_upload(single, f"resume-{round_}", volumes / ".uploads"))
            load_after = os.getloadavg()
        finally:
            server.stop()
        results: dict[str, Any] = {
            "bytes": args.size,
            "repeats": args.repeats,
            "cpus": os.cpu_count(),
            "load_average_before": load_before,
            "load_average_after": load_after,
            "seconds": rows,
            "median_mb_per_s": {name: args.size / MB / median(samples) for name, samples in rows.items()},
            "resumes": resumes,
        }
        gigabytes = args.size / 1e9
        results["cpu_s_per_gb_median"] = {
            "server": median([server / gigabytes for server, _ in client.cpu]),
            "cli": median([cli / gigabytes for _, cli in client.cpu]),
        }
        clean = median(rows["api 1"])
        results["resume_extra_s_median"] = median([r["total_s"] - clean for r in resumes])
        print(json.dumps(results, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
