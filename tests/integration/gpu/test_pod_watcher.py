"""The node pod watcher against kmock, an in-memory Kubernetes API served over HTTP (no real API server
can run on the test machines). kmock does not fill metadata.namespace or uid, so the pods carry them, and
it ignores `timeoutSeconds`, so `ShortWatches` ends each watch after a second as a real server ends them
after their timeout (the client then resumes)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import kmock
import pytest
import yaml

from astrago.gpu.kube import watch_node_pods

CID = "c0" * 32
WATCH_TIMEOUT_S = 1.0


def _pod(name: str, uid: str, node: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "team-a", "uid": uid},
        "spec": {"nodeName": node, "containers": [{"name": "main", "image": "pytorch"}]},
        "status": {
            "containerStatuses": [
                {
                    "name": "main",
                    "containerID": f"containerd://{CID}",
                    "image": "pytorch",
                    "imageID": "",
                    "ready": True,
                    "restartCount": 0,
                }
            ]
        },
    }


class ShortWatches(kmock.KubernetesEmulator):  # type: ignore[misc]
    async def _serve_watch(self, request: Any) -> AsyncIterator[Any]:
        events = super()._serve_watch(request)
        deadline = asyncio.get_running_loop().time() + WATCH_TIMEOUT_S
        async with contextlib.aclosing(events):
            while True:
                remaining = deadline - asyncio.get_running_loop().time()
                try:
                    event = await asyncio.wait_for(anext(events), timeout=max(remaining, 0.001))
                except (TimeoutError, StopAsyncIteration):
                    return
                yield event


@pytest.fixture
def api_url() -> Iterator[str]:
    """kmock's emulator on a loopback port, in its own event loop thread (the watcher is synchronous)."""
    ready = threading.Event()
    url: list[str] = []
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def serve() -> None:
        async with ShortWatches() as emulator, kmock.Server(emulator) as server:
            url.append(str(server.url).rstrip("/"))
            ready.set()
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    yield url[0]
    loop.call_soon_threadsafe(stop.set)
    thread.join(timeout=10)


def _wait(condition: Any, timeout_s: float = 10.0) -> None:
    end = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)


def _kubeconfig(path: Path, server: str) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "kmock", "cluster": {"server": server}}],
                "users": [{"name": "exporter", "user": {"token": "test"}}],
                "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "exporter"}}],
                "current-context": "kmock",
            }
        )
    )
    return path


def test_watcher_lists_then_follows_this_nodes_pods(api_url: str, tmp_path: Path) -> None:
    with httpx.Client(base_url=api_url) as http:
        http.post(
            "/api/v1/namespaces/team-a/pods", json=_pod("trainer-0", "uid-1", "gpu-1")
        ).raise_for_status()
        http.post(
            "/api/v1/namespaces/team-a/pods", json=_pod("elsewhere", "uid-2", "gpu-2")
        ).raise_for_status()
        watcher = watch_node_pods(str(_kubeconfig(tmp_path / "kubeconfig", api_url)), "gpu-1")
        try:
            assert watcher.synced.wait(10)
            assert watcher.is_current()
            listed = watcher.pod("uid-1")
            assert listed is not None
            assert (listed.namespace, listed.name, listed.container_name(CID)) == (
                "team-a",
                "trainer-0",
                "main",
            )
            assert watcher.pod("uid-2") is None  # another node's pod
            http.post(
                "/api/v1/namespaces/team-a/pods", json=_pod("trainer-1", "uid-3", "gpu-1")
            ).raise_for_status()
            _wait(lambda: watcher.pod("uid-3") is not None)
        finally:
            watcher.stop()
