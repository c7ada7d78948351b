"""dstack under test: `dstack server` from its own venv, with a temp home (SQLite) and no backends."""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from pathlib import Path

import httpx
from api_system import Page, SystemInfo, checked
from server_process import ServerProcess, free_port

VERSION = "0.22.5"
PROJECT = "main"  # created by `dstack server` on first start


def ensure_venv(venv: Path, log_path: Path) -> float | None:
    """Create the separate venv with dstack[server] if it is missing; the install's seconds, or None if
    it was already there. Never installed into the project's venv: dstack is only a peer to compare with."""
    if (venv / "bin" / "dstack").exists():
        return None
    return timed_install(venv, f"dstack[server]=={VERSION}", log_path)


def timed_install(venv: Path, requirement: str, log_path: Path) -> float:
    """Seconds to create `venv` and `pip install` the requirement into it (pip's output goes to a log)."""
    started = time.perf_counter()
    with log_path.open("ab") as log:
        subprocess.run(["python3", "-m", "venv", str(venv)], check=True, stdout=log, stderr=log)
        pip = [str(venv / "bin" / "pip"), "install", requirement]
        subprocess.run(pip, check=True, stdout=log, stderr=log)
    return time.perf_counter() - started


def _run_spec(index: int) -> dict[str, object]:
    # No backend and no fleet can take it; with `retry` on no-capacity it stays `submitted` (retrying),
    # the nearest equivalent of a queued job. Without `retry` dstack fails it within seconds.
    return {
        "run_name": f"bench-{index}",
        "configuration": {
            "type": "task",
            "commands": ["sleep 3600"],
            "retry": {"on_events": ["no-capacity"], "duration": "1d"},
        },
    }


class DstackSystem:
    max_page = 100

    def __init__(self, venv: Path, work_dir: Path) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.token = secrets.token_hex(16)
        home = work_dir / "dstack-home"
        env = {**os.environ, "HOME": str(home), "DSTACK_SERVER_DIR": str(home / "server")}
        argv = [
            str(venv / "bin" / "dstack"),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--token",
            self.token,
            "--yes",
        ]
        self.process = ServerProcess(argv, env, work_dir / "dstack-server.log")
        self.info = SystemInfo(
            name="dstack",
            version=VERSION,
            notes=[
                "SQLite in a temp home, no backends or fleets, default settings",
                "load: `task` runs (`sleep 3600`) with retry on no-capacity: they stay `submitted`, retrying",
            ],
        )

    def start(self) -> float:
        return self.process.start_and_wait(self._ready)

    def _ready(self) -> bool:
        try:
            response = httpx.post(
                f"{self.base_url}/api/users/get_my_user",
                headers={"Authorization": f"Bearer {self.token}"},
                timeout=2,
            )
        except httpx.TransportError:
            return False
        return response.status_code == 200

    async def prepare(self, client: httpx.AsyncClient) -> None:
        client.headers["Authorization"] = f"Bearer {self.token}"

    async def submit(self, client: httpx.AsyncClient, index: int) -> str:
        response = await client.post(
            f"{self.base_url}/api/project/{PROJECT}/runs/apply",
            json={"plan": {"run_spec": _run_spec(index)}, "force": False},
        )
        return str(checked(response).json()["id"])

    async def list_page(self, client: httpx.AsyncClient, limit: int, cursor: object | None) -> Page:
        body: dict[str, object] = {"project_name": PROJECT, "limit": limit}
        if cursor is not None:
            assert isinstance(cursor, tuple)
            body["prev_submitted_at"], body["prev_run_id"] = cursor
        runs = checked(await client.post(f"{self.base_url}/api/runs/list", json=body)).json()
        # dstack's keyset: the (submitted_at, id) of the last run of the previous page.
        next_cursor = (runs[-1]["submitted_at"], runs[-1]["id"]) if len(runs) == limit else None
        return Page(ids=[run["id"] for run in runs], next_cursor=next_cursor)

    async def get(self, client: httpx.AsyncClient, workload_id: str) -> None:
        url = f"{self.base_url}/api/project/{PROJECT}/runs/get"
        checked(await client.post(url, json={"id": workload_id}))

    async def server_gauges(self, client: httpx.AsyncClient) -> dict[str, float]:
        return {}

    def stop(self) -> None:
        self.process.stop()
