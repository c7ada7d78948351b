"""Upload throughput: the same bytes copied straight onto the volumes' disk (like `cp` then `sync`) vs. sent
through the API with `astrago upload` (TUS, a sha256 per chunk, fsync before every acknowledged offset),
one file and four files in parallel, the CLI's start-up apart, and what a resume costs. See README.md for
the command and the figures."""

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
    """A local copy onto the same disk, durable when it ends: `cp` then `sync` (the kernel copies the
    bytes itself, then every copied file is fsync'd). An upload is durable when the CLI ends too (every
    acknowledged chunk was fsync'd), so both end in the same state."""
    target_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    targets = [target_dir / source.name for source in sources]
    for source, target in zip(sources, targets, strict=True):
        shutil.copyfile(source, target)
    for target in targets:
        with target.open("rb") as copied:
            os.fsync(copied.fileno())
    elapsed = time.perf_counter() - start
    shutil.rmtree(target_dir)
    return elapsed


def direct_write(sources: list[Path], target_dir: Path) -> float:
    """The same, but the bytes pass through a program's memory on their way to the disk, as a server's
    must (they arrive from the network): read into one reused buffer and written, then fsync'd at the
    end, like `dd bs=16M conv=fsync`. What any receiver pays on top of `cp`'s in-kernel copy."""
    target_dir.mkdir(parents=True, exist_ok=True)
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    start = time.perf_counter()
    for source in sources:
        with source.open("rb", buffering=0) as src, (target_dir / source.name).open("wb", buffering=0) as dst:
            while count := src.readinto(buffer):
                written = 0
                while written < count:
                    written += dst.write(view[written:count])
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

    def startup(self) -> tuple[float, float]:
        """What starting the CLI costs, apart from any upload: `astrago volume ls` loads the same command
        module and configuration and makes one request. (wall seconds, CPU seconds)"""
        cpu = client_cpu_s()
        start = time.perf_counter()
        self.run("volume", "ls", "-w", "bench", "--json")
        return time.perf_counter() - start, client_cpu_s() - cpu

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
    parser.add_argument("--size", type=int, default=2_000_000_000, help="bytes per measurement (2 GB)")
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
            rows: dict[str, list[float]] = {
                "direct 1": [],
                "write loop 1": [],
                "api 1": [],
                "direct 4": [],
                "api 4": [],
            }
            resumes = []
            startups = []
            for round_ in range(args.repeats):  # interleaved, so a noisy moment hits every figure alike
                startups.append(client.startup())
                rows["direct 1"].append(direct_copy([single], volumes / "direct"))
                rows["write loop 1"].append(direct_write([single], volumes / "direct"))
                rows["api 1"].append(client.upload([single], f"one-{round_}", 1))
                rows["direct 4"].append(direct_copy(quarters, volumes / "direct"))
                rows["api 4"].append(client.upload(quarters, f"four-{round_}", 4))
                resumes.append(client.interrupted_upload(single, f"resume-{round_}", volumes / ".uploads"))
            load_after = os.getloadavg()
        finally:
            server.stop()
        print(
            json.dumps(
                report(args.size, args.repeats, rows, startups, client.cpu, resumes, load_before, load_after),
                indent=2,
            )
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def report(
    size: int,
    repeats: int,
    rows: dict[str, list[float]],
    startups: list[tuple[float, float]],
    cpu: list[tuple[float, float]],
    resumes: list[dict[str, float]],
    load_before: tuple[float, float, float],
    load_after: tuple[float, float, float],
) -> dict[str, Any]:
    """Medians and ratios. "transfer" figures leave out the CLI's start-up (its median, measured apart):
    what the upload itself takes once the command is running."""
    startup_wall = median([wall for wall, _ in startups])
    startup_cpu = median([cpu_s for _, cpu_s in startups])
    gigabytes = size / 1e9
    mb_per_s = {name: size / MB / median(samples) for name, samples in rows.items()}
    transfer = {
        name: size / MB / (median(samples) - startup_wall) for name, samples in rows.items() if "api" in name
    }
    return {
        "bytes": size,
        "repeats": repeats,
        "cpus": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": load_after,
        "seconds": rows,
        "cli_startup_s_median": {"wall": startup_wall, "cpu": startup_cpu},
        "median_mb_per_s": mb_per_s,
        "transfer_mb_per_s": transfer,
        "api_over_direct": {
            f"{count} file{'s' if count > 1 else ''}": {
                "end_to_end": mb_per_s[f"api {count}"] / mb_per_s[f"direct {count}"],
                "transfer": transfer[f"api {count}"] / mb_per_s[f"direct {count}"],
            }
            for count in (1, 4)
        },
        **(
            {
                "api_over_write_loop": {
                    "end_to_end": mb_per_s["api 1"] / mb_per_s["write loop 1"],
                    "transfer": transfer["api 1"] / mb_per_s["write loop 1"],
                }
            }
            if "write loop 1" in mb_per_s
            else {}
        ),
        "cpu_s_per_gb_median": {
            "server": median([server / gigabytes for server, _ in cpu]),
            "cli": median([cli / gigabytes for _, cli in cpu]),
            "cli_without_startup": median([(cli - startup_cpu) / gigabytes for _, cli in cpu]),
        },
        "resumes": resumes,
        "resume_extra_s_median": (
            median([r["total_s"] - median(rows["api 1"]) for r in resumes]) if resumes else None
        ),
    }


if __name__ == "__main__":
    main()
