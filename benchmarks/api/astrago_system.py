"""AstraGo under test: `astrago server` with 4 simulated GPUs and a fresh SQLite data dir."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import httpx
from api_system import Page, SystemInfo, checked
from prometheus_client.parser import text_string_to_metric_families
from server_process import ServerProcess, free_port, stop_processes_mentioning

WORKSPACE = "bench"
# 1 GPU each on 4 simulated GPUs: four run, the rest stay PENDING, so the store keeps growing and the
# scheduler sees the whole queue on every cycle, as it would on a busy machine.
WORKLOAD = {
    "workspace": WORKSPACE,
    "command": ["sleep", "3600"],
    "resources": {"cpu": "100m", "memory": "64Mi", "gpus": 1},
    "max_runtime": "30m",  # a safety net: the four that run never outlive an interrupted benchmark
}


class AstraGoSystem:
    max_page = 500

    def __init__(self, astrago_bin: Path, work_dir: Path, version: str) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.password = secrets.token_urlsafe(16)
        self.data_dir = data_dir = work_dir / "astrago-data"
        env = {
            **os.environ,
            "ASTRAGO_DATA_DIR": str(data_dir),
            "ASTRAGO_ADMIN_PASSWORD": self.password,
        }
        argv = [str(astrago_bin), "server", "--port", str(self.port), "--simulate-gpus", "4xA100-80GB"]
        self.process = ServerProcess(argv, env, work_dir / "astrago-server.log")
        self.info = SystemInfo(
            name="AstraGo",
            version=version,
            notes=[
                "SQLite (WAL) in a fresh data dir, local backend, 4 simulated A100-80GB, default settings",
                "load: 1-GPU `sleep 3600` jobs: 4 run, the rest stay PENDING with a reason and position",
            ],
        )

    def start(self) -> float:
        return self.process.start_and_wait(self._ready)

    def _ready(self) -> bool:
        try:
            return httpx.get(f"{self.base_url}/readyz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    async def prepare(self, client: httpx.AsyncClient) -> None:
        login = await client.post(
            f"{self.base_url}/api/v1/auth/login", json={"username": "admin", "password": self.password}
        )
        client.headers["Authorization"] = f"Bearer {checked(login).json()['token']}"
        checked(await client.post(f"{self.base_url}/api/v1/workspaces", json={"name": WORKSPACE}))

    async def submit(self, client: httpx.AsyncClient, index: int) -> str:
        response = await client.post(f"{self.base_url}/api/v1/workloads", json=WORKLOAD)
        return str(checked(response).json()["id"])

    async def list_page(self, client: httpx.AsyncClient, limit: int, cursor: object | None) -> Page:
        params: dict[str, str | int] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = str(cursor)
        body = checked(await client.get(f"{self.base_url}/api/v1/workloads", params=params)).json()
        return Page(ids=[item["id"] for item in body["items"]], next_cursor=body["next_cursor"])

    async def get(self, client: httpx.AsyncClient, workload_id: str) -> None:
        checked(await client.get(f"{self.base_url}/api/v1/workloads/{workload_id}"))

    async def server_gauges(self, client: httpx.AsyncClient) -> dict[str, float]:
        text = checked(await client.get(f"{self.base_url}/metrics")).text
        gauges: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name in (
                    "astrago_queue_length",
                    "astrago_scheduling_cycle_seconds_sum",
                    "astrago_scheduling_cycle_seconds_count",
                ):
                    gauges[sample.name] = sample.value
        return gauges

    def stop(self) -> None:
        self.process.stop()
        # The jobs that ran live in sessions of their own, by design beyond the server's lifetime.
        stop_processes_mentioning(str(self.data_dir))
