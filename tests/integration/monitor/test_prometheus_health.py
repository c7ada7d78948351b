"""GPU health fencing on Kubernetes: a real Prometheus (Debian package) scrapes the GPU exporter's exposition,
as `astrago.gpu.metrics` renders it for a node's GPUs, and the server's health monitor reads the Xid
counters and fault series back through Prometheus's HTTP API and fences through the real services (SQLite).

The exposition is served from this test (there is no GPU and no cluster here: the node is the `node` label
the chart's relabelling gives each exporter target); everything from the scrape on is the real path. The
last test runs a real `astrago server --backend kubernetes` against the kmock emulator (no real Kubernetes
API can run on the test machines; see tests/integration/backends/kubernetes/fake_cluster.py). An
exporter restart is a new `CollectorHealth` (its counters and start time begin again) behind the same
target."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from astrago.auth.principal import Principal
from astrago.backends.base import BackendCapabilities, Capability
from astrago.gpu.collector import CollectorHealth, Snapshot
from astrago.gpu.metrics import MetricsRenderer
from astrago.gpu.model import GpuDevice, GpuHealthSignals, Slowdown
from astrago.monitor.prometheus import PrometheusReader
from astrago.monitor.prometheus_health import PrometheusHealthMonitor
from astrago.services.registry import Services
from astrago.services.snapshot import nodes_view
from astrago.store.models import Device
from astrago.store.repositories import AuditRepository, FenceRepository, NodeRepository, UserRepository
from tests.integration.backends.kubernetes.fake_cluster import NAMESPACE, running_cluster
from tests.support.kubernetes_server import kubernetes_server
from tests.support.prometheus import running_prometheus, wait_for_series
from tests.support.server import ADMIN_PASSWORD
from tests.support.services import services_on

NODE = "gpu-1"  # as the emulated cluster names its node
XID_79 = "XID 79 (GPU fallen off the bus)"
CAPABILITIES = BackendCapabilities(backend="kubernetes", supported=frozenset({Capability.COMMANDS}))


@dataclass
class Exporter:
    """What the node's GPU exporter reports; each scrape renders the current state."""

    target: str = ""
    health: CollectorHealth = field(default_factory=CollectorHealth)
    signals: dict[int, GpuHealthSignals] = field(default_factory=dict)
    scrapes: int = 0

    def snapshot(self) -> Snapshot:
        devices = tuple(
            GpuDevice(index=i, uuid=f"GPU-{i}", name="NVIDIA H100 80GB HBM3", memory_total_mib=81559)
            for i in range(2)
        )
        return Snapshot(
            source="nvml",
            collected_at=time.time(),
            duration_s=0.01,
            devices=devices,
            processes=(),
            health=tuple(self.signals.get(i, GpuHealthSignals(gpu_index=i)) for i in range(2)),
        )

    def restart(self) -> None:
        self.health = CollectorHealth()


@pytest.fixture
def exporter() -> Iterator[Exporter]:
    state = Exporter()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = MetricsRenderer(state.health).render(state.snapshot())
            state.scrapes += 1
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.target = f"127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def prometheus(tmp_path: Path, exporter: Exporter) -> Iterator[str]:
    jobs = (
        "  - job_name: astrago-gpu\n"
        f"    static_configs: [{{targets: ['{exporter.target}'], labels: {{node: {NODE}}}}}]\n"
    )
    with running_prometheus(tmp_path, jobs) as url:
        wait_for_series(url, "gpu_exporter_start_time_seconds", log=tmp_path / "prometheus.log")
        yield url


def _scraped(exporter: Exporter, url: str) -> None:
    """Until Prometheus holds a scrape taken after this call (the exporter's state as it is now)."""
    seen = exporter.scrapes
    deadline = time.monotonic() + 15
    while exporter.scrapes < seen + 2:  # the second began after the change and has been stored
        assert time.monotonic() < deadline
        time.sleep(0.2)
    time.sleep(0.3)


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[Services]:
    async with services_on(f"sqlite+aiosqlite:///{tmp_path / 'astrago.db'}", tmp_path, CAPABILITIES) as found:
        async with found.ctx.write() as session:
            await NodeRepository(session).upsert(
                name=NODE,
                backend="kubernetes",
                cpu_milli=64000,
                memory_mib=512 * 1024,
                schedulable=True,
                simulated=False,
                labels={},
                devices=[Device(index=i, model="H100-80GB", memory_mib=81559) for i in range(2)],
                seen_at=datetime.now(UTC),
            )
        yield found


async def _admin(services: Services) -> Principal:
    async with services.ctx.read() as session:
        user = await UserRepository(session).by_username("admin")
    assert user is not None
    return Principal(user_id=user.id, username="admin", is_admin=True)


async def _fenced(services: Services) -> dict[int, str | None]:
    async with services.ctx.read() as session:
        (node,) = await nodes_view(session)
    return {gpu.index: gpu.fenced for gpu in node.gpus}


async def _gpu_alerts(services: Services) -> list[tuple[str, str]]:
    page = await services.alerts.alerts(await _admin(services), None, 50, None)
    return [(a.key, a.state) for a in page.items if a.rule == "gpu-unhealthy"]


async def test_an_xid_79_in_the_exporters_series_fences_that_gpu_of_that_node(
    services: Services, exporter: Exporter, prometheus: str
) -> None:
    exporter.health.xids[(0, 13)] = 2  # before the server reads: an application fault, recorded only
    _scraped(exporter, prometheus)
    reader = PrometheusReader(prometheus)
    monitor = PrometheusHealthMonitor(services.fences, reader, interval_s=1)
    try:
        assert await monitor.check_once(time.time()) == {NODE: []}  # where the counters stand
        assert await _fenced(services) == {0: None, 1: None}

        exporter.health.xids[(1, 79)] += 1
        _scraped(exporter, prometheus)
        changes = await monitor.check_once(time.time())
        (change,) = changes[NODE]
        assert (change.gpu_index, change.after.cause) == (1, XID_79)
        assert await _fenced(services) == {0: None, 1: f"GPU 1 on node {NODE} is fenced: {XID_79}"}
        assert await _gpu_alerts(services) == [(f"{NODE}/gpu1", "firing")]
        async with services.ctx.read() as session:
            audits = [a for a in await AuditRepository(session).recent(20) if a.action == "gpu.health"]
        assert [(a.target, a.detail) for a in audits] == [(f"{NODE}/gpu1", f"unhealthy: {XID_79}")]

        # the counter stays at 1: no new event; the admin looks at the GPU and puts it back in service
        assert await monitor.check_once(time.time()) == {NODE: []}
        assert await services.fences.uncordon(await _admin(services), NODE, 1) is True
        _scraped(exporter, prometheus)
        assert await monitor.check_once(time.time()) == {NODE: []}
        # a server restart (a new monitor) does not read the old count as a new Xid
        restarted = PrometheusHealthMonitor(services.fences, reader, interval_s=1)
        assert await restarted.check_once(time.time()) == {NODE: []}
        assert await restarted.check_once(time.time()) == {NODE: []}
        assert await _fenced(services) == {0: None, 1: None}
        assert await _gpu_alerts(services) == [(f"{NODE}/gpu1", "resolved")]

        # the exporter restarts and its new counter reports one Xid 79 again: the same value as before
        exporter.restart()
        exporter.health.xids[(1, 79)] = 1
        _scraped(exporter, prometheus)
        (change,) = (await restarted.check_once(time.time()))[NODE]
        assert (change.gpu_index, change.after.cause) == (1, XID_79)
    finally:
        await reader.close()


async def test_conditions_fence_while_the_exporter_reports_them(
    services: Services, exporter: Exporter, prometheus: str
) -> None:
    reader = PrometheusReader(prometheus)
    monitor = PrometheusHealthMonitor(services.fences, reader, interval_s=1)
    try:
        exporter.signals = {
            0: GpuHealthSignals(gpu_index=0, ecc_uncorrectable=3, remapped_rows_pending=False),
            1: GpuHealthSignals(
                gpu_index=1, retired_pages_pending=True, slowdowns=frozenset({Slowdown.HW_THERMAL})
            ),
        }
        _scraped(exporter, prometheus)
        await monitor.check_once(time.time())
        assert await _fenced(services) == {
            0: f"GPU 0 on node {NODE} is fenced: 3 uncorrectable ECC errors since the driver loaded",
            1: f"GPU 1 on node {NODE} is fenced: memory repair pending (a row remap or page retirement "
            "needs a reset)",
        }

        exporter.signals = {1: GpuHealthSignals(gpu_index=1, slowdowns=frozenset({Slowdown.HW_THERMAL}))}
        _scraped(exporter, prometheus)
        await monitor.check_once(time.time())
        assert await _fenced(services) == {0: None, 1: None}  # conditions clear when no longer reported
        async with services.ctx.read() as session:
            degraded = await FenceRepository(session).health(NODE, 1)
        assert degraded is not None
        assert (degraded.state, degraded.cause) == ("degraded", "clocks slowed down (hw thermal)")
    finally:
        await reader.close()


async def _wait(predicate: Callable[[], Awaitable[Any]], what: str, within_s: float = 30) -> Any:
    deadline = time.monotonic() + within_s
    while not (found := await predicate()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)
    return found


async def test_a_kubernetes_server_fences_the_gpu_and_the_next_job_waits_naming_it(
    tmp_path: Path, exporter: Exporter, prometheus: str
) -> None:
    env = {"ASTRAGO_GPU_HEALTH_PROMETHEUS_URL": prometheus, "ASTRAGO_GPU_HEALTH_INTERVAL_S": "0.5"}
    async with (
        running_cluster(tmp_path, nodes=(NODE,)) as cluster,
        kubernetes_server(cluster.kubeconfig, NAMESPACE, tmp_path / "server", extra_env=env) as server,
        httpx.AsyncClient(base_url=server.url, timeout=30) as client,
    ):
        login = await client.post(
            "/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}
        )
        client.headers["Authorization"] = f"Bearer {login.json()['token']}"

        async def first_reading() -> bool:
            return "GPU health: reading 2 GPUs of 1 nodes" in server.log_path.read_text()

        await _wait(first_reading, "the server's first health reading")
        exporter.health.xids[(2, 79)] += 1  # GPU 2 of the node falls off the bus

        async def gpu_2() -> dict[str, Any] | None:
            (node,) = (await client.get("/api/v1/nodes")).json()
            device: dict[str, Any] = next(d for d in node["devices"] if d["index"] == 2)
            return device if device["fenced"] else None

        device = await _wait(gpu_2, "GPU 2 fenced")
        assert (device["health"]["state"], device["health"]["cause"]) == ("unhealthy", XID_79)
        alerts = (await client.get("/api/v1/alerts")).json()["items"]
        assert [(a["key"], a["state"]) for a in alerts if a["rule"] == "gpu-unhealthy"] == [
            (f"{NODE}/gpu2", "firing")
        ]

        assert (await client.post("/api/v1/workspaces", json={"name": "k8s"})).status_code == 201
        body = {
            "workspace": "k8s",
            "image": "busybox:1.36",
            "command": ["sleep", "60"],
            "resources": {"gpus": 4, "cpu": "1", "memory": "1Gi"},
        }
        submitted = await client.post("/api/v1/workloads", json=body)
        assert submitted.status_code == 201, submitted.text
        workload_id = submitted.json()["id"]

        async def waits_naming_the_gpu() -> bool:
            workload = (await client.get(f"/api/v1/workloads/{workload_id}")).json()
            reason = workload["reason"] or ""
            return workload["status"] == "PENDING" and f"GPU 2 on node {NODE} is fenced: {XID_79}" in reason

        await _wait(waits_naming_the_gpu, "the 4-GPU job to wait naming GPU 2")
