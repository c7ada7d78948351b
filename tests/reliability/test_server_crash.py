"""`kill -9` of the server in the middle of a burst of submits from 8 clients: every submit it
acknowledged (201) is there after the restart, exactly once; submits in flight at the kill get no answer
and may or may not have been stored, but never twice."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.support.server import ADMIN_PASSWORD, ServerProcess, User, wait_for

CLIENTS = 8
JOB = {"workspace": "ml-a", "command": ["true"], "resources": {"gpus": 1, "cpu": "100m", "memory": "64Mi"}}


def _client(admin: User, acknowledged: list[str], stop: threading.Event) -> Callable[[], None]:
    def run() -> None:
        with admin.http as client:
            while not stop.is_set():
                try:
                    answer = client.post("/api/v1/workloads", json=JOB, timeout=10)
                except httpx.HTTPError:
                    return  # the server is gone: this client's last submit has no answer
                if answer.status_code == 201:
                    acknowledged.append(answer.json()["id"])

    return run


def _all_ids(admin: User) -> list[str]:
    ids: list[str] = []
    cursor: int | None = None
    while True:
        params = {"limit": 500, **({"cursor": cursor} if cursor else {})}
        page = admin.api("GET", "/api/v1/workloads", params=params).json()
        ids += [item["id"] for item in page["items"]]
        cursor = page.get("next_cursor")
        if not cursor:
            return ids


def test_kill9_during_a_submit_burst_keeps_every_acknowledged_submit_once(tmp_path: Path) -> None:
    server = ServerProcess(data_dir=tmp_path / "data")
    server.start()
    try:
        admin = User(server, "admin", tmp_path / "home")
        admin.login(ADMIN_PASSWORD)
        admin.cli("workspace", "create", "ml-a")
        acknowledged: list[str] = []
        stop = threading.Event()
        clients = [threading.Thread(target=_client(admin, acknowledged, stop)) for _ in range(CLIENTS)]
        for client in clients:
            client.start()
        wait_for(lambda: len(acknowledged) >= 60, timeout=60, what="a burst of submits")
        server.kill9()
        killed_at = len(acknowledged)
        stop.set()
        for client in clients:
            client.join(30)
        time.sleep(0.2)
        server.start()

        stored = _all_ids(admin)
        print(f"\nkill -9 after {killed_at} acknowledged submits; {len(stored)} stored after the restart")
        assert len(acknowledged) == killed_at  # nothing was acknowledged after the kill
        assert len(stored) == len(set(stored)), "a workload is stored twice"
        assert not set(acknowledged) - set(stored), "an acknowledged submit was lost"
        assert len(stored) <= len(acknowledged) + CLIENTS  # at most the in-flight ones besides
        assert httpx.get(f"{server.url}/readyz").status_code == 200
    finally:
        server.stop()
