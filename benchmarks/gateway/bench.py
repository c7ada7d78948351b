"""Gateway benchmark: what `/proxy/<workload>/<port>/` adds over a direct connection, and how fast logs
stream. Starts its own `astrago server` (local backend, temp data dir), runs `app.py` as an interactive
workload, then measures direct and through-the-gateway side by side, in alternating rounds.

    .venv/bin/python benchmarks/gateway/bench.py [--requests 2000] [--download-mb 1024] [--log-seconds 10]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from websockets.sync.client import connect

HERE = Path(__file__).parent
PASSWORD = "bench-password-1"
LINES_PER_S = 10_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


class Server:
    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "ASTRAGO_DATA_DIR": str(data_dir),
            "ASTRAGO_ADMIN_PASSWORD": PASSWORD,
            "ASTRAGO_SCHEDULING_INTERVAL_S": "0.3",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        args = [
            sys.executable,
            "-m",
            "astrago.cli.main",
            "server",
            "--port",
            str(self.port),
            "--simulate-gpus",
            "1xA100-80GB",
        ]
        self.log = (data_dir.parent / "server.log").open("wb")
        self.process = subprocess.Popen(
            args, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        for _ in range(300):
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        token = httpx.post(
            f"{self.url}/api/v1/auth/login", json={"username": "admin", "password": PASSWORD}
        ).json()["token"]
        self.api = httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=60)
        self.token = token
        self.api.post("/api/v1/workspaces", json={"name": "bench"}).raise_for_status()

    def submit(self, **body: object) -> str:
        response = self.api.post("/api/v1/workloads", json={"workspace": "bench", **body})
        response.raise_for_status()
        return str(response.json()["id"])

    def wait(self, workload_id: str, *statuses: str) -> dict[str, object]:
        for _ in range(1200):
            workload = self.api.get(f"/api/v1/workloads/{workload_id}").json()
            if workload["status"] in statuses:
                return dict(workload)
            time.sleep(0.1)
        raise RuntimeError(f"{workload_id} never became {statuses}")

    def stop(self, workload_ids: list[str]) -> None:
        """Cancel what it ran (workloads outlive their server by design), then stop the server."""
        for workload_id in workload_ids:
            self.api.post(f"/api/v1/workloads/{workload_id}/cancel")
        for workload_id in workload_ids:
            self.wait(workload_id, "CANCELLED", "SUCCEEDED", "FAILED")
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(30)


def http_latency(base: str, headers: dict[str, str], requests: int) -> list[float]:
    with httpx.Client(headers=headers) as client:
        client.get(f"{base}/small").raise_for_status()
        samples = []
        for _ in range(requests):
            started = time.perf_counter()
            client.get(f"{base}/small").raise_for_status()
            samples.append((time.perf_counter() - started) * 1000)
    return samples


def ws_round_trips(base: str, headers: dict[str, str], count: int) -> list[float]:
    with connect(base.replace("http://", "ws://") + "/echo", additional_headers=headers) as websocket:
        samples = []
        for _ in range(count):
            started = time.perf_counter()
            websocket.send(b"x" * 64)
            websocket.recv()
            samples.append((time.perf_counter() - started) * 1000)
    return samples


def download_mb_per_s(base: str, headers: dict[str, str], size: int) -> float:
    with httpx.Client(headers=headers, timeout=None) as client:
        started = time.perf_counter()
        received = 0
        with client.stream("GET", f"{base}/bytes/{size}") as response:
            for chunk in response.iter_raw(1 << 20):
                received += len(chunk)
        assert received == size, received
        return size / (1 << 20) / (time.perf_counter() - started)


def log_stream_latency(server: Server, seconds: int) -> tuple[list[float], int, int]:
    """A job printing LINES_PER_S lines/s, each stamped with its write time; an SSE reader notes when
    each arrives. Returns per-line latencies (ms), lines received and lines written."""
    total = LINES_PER_S * seconds
    code = (
        "import sys, time\n"
        f"start = time.time()\n"
        f"for batch in range({total // 100}):\n"
        "    due = start + batch / 100\n"
        "    time.sleep(max(0.0, due - time.time()))\n"
        "    now = time.time()\n"
        "    sys.stdout.write(''.join(f'{now:.6f} line {batch * 100 + i}\\n' for i in range(100)))\n"
        "    sys.stdout.flush()\n"
    )
    workload_id = server.submit(command=[sys.executable, "-c", code])
    for _ in range(600):
        if server.api.get(f"/api/v1/workloads/{workload_id}").json()["placements"]:
            break
        time.sleep(0.05)
    latencies, received = [], 0
    url = f"{server.url}/api/v1/workloads/{workload_id}/logs/stream"
    headers = {"Authorization": f"Bearer {server.token}"}
    with httpx.Client(headers=headers, timeout=None) as client, client.stream("GET", url) as response:
        for raw in response.iter_lines():
            if raw.startswith("event: end"):
                break
            if raw.startswith("data: "):
                line = json.loads(raw[6:])["line"]
                latencies.append((time.time() - float(line.split(" ", 1)[0])) * 1000)
                received += 1
    return latencies, received, total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--download-mb", type=int, default=1024)
    parser.add_argument("--log-seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp) / "data")
        started: list[str] = []
        try:
            workload_id = server.submit(
                kind="interactive", command=[sys.executable, str(HERE / "app.py")], ports=[8000]
            )
            started.append(workload_id)
            server.wait(workload_id, "RUNNING")
            log = server.api.get(f"/api/v1/workloads/{workload_id}/logs").text
            listening = re.search(r"listening on (\d+)", log)
            assert listening is not None, log
            direct = f"http://127.0.0.1:{listening.group(1)}"
            gateway = f"{server.url}/proxy/{workload_id}/8000"
            auth = {"Authorization": f"Bearer {server.token}"}
            results: dict[str, dict[str, list[float]]] = {"direct": {}, "gateway": {}}
            for _ in range(args.rounds):  # alternate, so both see the same machine load
                for name, base, headers in (("direct", direct, {}), ("gateway", gateway, auth)):
                    got = results[name]
                    got.setdefault("http", []).extend(
                        http_latency(base, headers, args.requests // args.rounds)
                    )
                    got.setdefault("ws", []).extend(
                        ws_round_trips(base, headers, args.requests // args.rounds)
                    )
                    got.setdefault("download", []).append(
                        download_mb_per_s(base, headers, args.download_mb << 20)
                    )
            load = os.getloadavg()
            latencies, received, written = log_stream_latency(server, args.log_seconds)
        finally:
            server.stop(started)
    print(f"machine: {os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print("| measure | direct | gateway | ratio |")
    print("|---|---|---|---|")
    for label, key, q in (
        ("HTTP GET p50 (ms)", "http", 50),
        ("HTTP GET p99 (ms)", "http", 99),
        ("WebSocket round trip p50 (ms)", "ws", 50),
        ("WebSocket round trip p99 (ms)", "ws", 99),
    ):
        d, g = percentile(results["direct"][key], q), percentile(results["gateway"][key], q)
        print(f"| {label} | {d:.2f} | {g:.2f} | {g / d:.2f}× |")
    d, g = statistics.median(results["direct"]["download"]), statistics.median(results["gateway"]["download"])
    print(f"| {args.download_mb} MiB download, median MiB/s | {d:.0f} | {g:.0f} | {g / d:.0%} of direct |")
    print(
        f"\nlog streaming at {LINES_PER_S} lines/s for {args.log_seconds} s: {received}/{written} lines, "
        f"latency p50 {percentile(latencies, 50):.0f} ms, p95 {percentile(latencies, 95):.0f} ms, "
        f"p99 {percentile(latencies, 99):.0f} ms, lost {written - received}"
    )


if __name__ == "__main__":
    main()
