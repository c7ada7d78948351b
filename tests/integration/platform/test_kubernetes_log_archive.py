"""Logs of a finished Kubernetes job survive the deletion of its pods and are served by another process:
a controllers-only server runs the job on the emulated cluster (kmock, see fake_cluster.py: no real
Kubernetes API can run on the test machines) and copies its log into the shared database before it deletes
the job; an API-only server with a data dir of its own then serves the log."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from tests.integration.backends.kubernetes.fake_cluster import NAMESPACE, autopilot, running_cluster
from tests.support.kubernetes_server import kubernetes_server
from tests.support.server import ADMIN_PASSWORD


@asynccontextmanager
async def server(role: str, data_dir: Path, database_url: str, kubeconfig: Path) -> AsyncIterator[str]:
    async with kubernetes_server(
        kubeconfig, NAMESPACE, data_dir, role=role, database_url=database_url
    ) as running:
        yield running.url


async def test_a_finished_jobs_log_is_served_by_another_process_after_its_pods_are_gone(
    tmp_path: Path,
) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    async with running_cluster(tmp_path) as cluster:
        pilot = asyncio.create_task(autopilot(cluster, tick_s=0.1))
        try:
            async with (
                server("controllers", tmp_path / "controllers", database_url, cluster.kubeconfig),
                server("api", tmp_path / "api", database_url, cluster.kubeconfig) as api,
                httpx.AsyncClient(base_url=api, timeout=30) as client,
            ):
                login = await client.post(
                    "/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}
                )
                client.headers["Authorization"] = f"Bearer {login.json()['token']}"
                assert (await client.post("/api/v1/workspaces", json={"name": "k8s"})).status_code == 201
                body = {
                    "workspace": "k8s",
                    "image": "busybox:1.36",
                    "command": ["echo", "hello from the cluster"],
                }
                submitted = await client.post("/api/v1/workloads", json=body)
                assert submitted.status_code == 201, submitted.text
                workload_id = submitted.json()["id"]
                for _ in range(300):
                    workload = (await client.get(f"/api/v1/workloads/{workload_id}")).json()
                    if workload["status"] in ("SUCCEEDED", "FAILED"):
                        break
                    await asyncio.sleep(0.1)
                assert workload["status"] == "SUCCEEDED", workload
                for _ in range(300):  # the controllers delete the job once its log is archived
                    if not await cluster.kubelet.pods():
                        break
                    await asyncio.sleep(0.1)
                assert await cluster.kubelet.pods() == []
                logs = await client.get(f"/api/v1/workloads/{workload_id}/logs")
                assert logs.status_code == 200, logs.text
                assert logs.text.endswith("echo hello from the cluster\n")
                streamed = await client.get(
                    f"/api/v1/workloads/{workload_id}/logs/stream", params={"follow": "false"}
                )
                assert "hello from the cluster" in streamed.text
                assert streamed.text.rstrip().endswith("event: end\ndata: {}")
        finally:
            pilot.cancel()
    assert not (tmp_path / "api" / "logs" / "kubernetes").exists()  # served from the database, not a file
