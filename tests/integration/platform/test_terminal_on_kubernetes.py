"""A terminal in a Kubernetes workload through the real server, as `astrago exec -it` and the console's
Terminal tab open it: the exec WebSocket relays keys, resizes, Ctrl-C and the exit code to the pod's exec
subresource. The cluster is the kmock emulator (no real Kubernetes API can run on the test machines);
fake_cluster serves a TTY exec on a real pseudo-terminal of the test machine, as a kubelet would in the
container, so the line discipline (Ctrl-C → SIGINT) is real."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from urllib.parse import urlencode

import httpx
from websockets.asyncio.client import ClientConnection, connect

from tests.integration.backends.kubernetes.fake_cluster import autopilot, running_cluster
from tests.integration.platform.test_kubernetes_log_archive import server
from tests.support.server import ADMIN_PASSWORD

PROMPT = "k8s> "


async def _screen_until(socket: ClientConnection, text: str, seen: list[str]) -> str:
    while text not in "".join(seen):
        frame = await asyncio.wait_for(socket.recv(), 20)
        assert isinstance(frame, bytes), frame
        seen.append(frame[1:].decode(errors="replace"))
    shown = "".join(seen)
    seen.clear()
    seen.append(shown[shown.index(text) + len(text) :])
    return shown


async def test_a_terminal_in_a_kubernetes_workload_resizes_interrupts_and_exits_with_its_code(
    tmp_path: Path,
) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'k8s.db'}"
    async with running_cluster(tmp_path) as cluster:
        pilot = asyncio.create_task(autopilot(cluster, tick_s=0.1))
        try:
            async with (
                server("all", tmp_path / "server", database_url, cluster.kubeconfig) as url,
                httpx.AsyncClient(base_url=url, timeout=30) as client,
            ):
                login = await client.post(
                    "/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}
                )
                token = login.json()["token"]
                client.headers["Authorization"] = f"Bearer {token}"
                assert (await client.post("/api/v1/workspaces", json={"name": "k8s"})).status_code == 201
                body = {"workspace": "k8s", "image": "busybox:1.36", "command": ["sleep", "300"]}
                submitted = await client.post("/api/v1/workloads", json=body)
                assert submitted.status_code == 201, submitted.text
                workload_id = submitted.json()["id"]
                for _ in range(300):
                    if (await client.get(f"/api/v1/workloads/{workload_id}")).json()["status"] == "RUNNING":
                        break
                    await asyncio.sleep(0.1)
                query = urlencode([("command", "/bin/sh"), ("tty", "true"), ("rows", "30"), ("cols", "100")])
                ws_url = url.replace("http", "ws", 1) + f"/api/v1/workloads/{workload_id}/exec?{query}"
                seen: list[str] = []
                headers = {"Authorization": f"Bearer {token}"}
                async with connect(ws_url, additional_headers=headers) as socket:
                    await socket.send(b"\x00PS1='k8s''> '; stty size\n")
                    assert "30 100" in await _screen_until(socket, PROMPT, seen)
                    await socket.send(json.dumps({"type": "resize", "rows": 40, "cols": 132}))
                    await socket.send(b"\x00stty size\n")
                    assert "40 132" in await _screen_until(socket, PROMPT, seen)
                    await socket.send(b"\x00echo sleep''ing; sleep 100; echo sl''ept\n")
                    await _screen_until(socket, "sleeping\r\n", seen)
                    await socket.send(b"\x00\x03")  # Ctrl-C: the foreground sleep is interrupted
                    assert "slept" not in await _screen_until(socket, PROMPT, seen)
                    await socket.send(b"\x00exit 3\n")
                    while isinstance(frame := await asyncio.wait_for(socket.recv(), 20), bytes):
                        pass
                    assert json.loads(frame) == {"type": "exit", "code": 3}
                await client.post(f"/api/v1/workloads/{workload_id}/cancel")
        finally:
            pilot.cancel()
