"""Telemetry on Kubernetes: a real Prometheus (Debian package) scrapes the GPU exporter's exposition, as
`astrago.gpu.metrics` renders it for processes in the platform's pods, and the server's Prometheus sampler
attributes the series to workload replicas by pod name. The exposition is served from this test (there is
no GPU and no cluster here: the pods are names in the snapshot, as the exporter's pod directory gives them);
everything from the scrape on is the real path."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from astrago.backends.kubernetes.naming import object_name
from astrago.config import Settings
from astrago.domain.enums import WorkloadStatus
from astrago.gpu.collector import AttributedProcess, CollectorHealth, Snapshot
from astrago.gpu.metrics import MetricsRenderer
from astrago.gpu.model import GpuDevice, GpuProcess, MigDevice, ProcessKind
from astrago.monitor.prometheus import PrometheusReader, PrometheusSampler, PrometheusUnavailable
from astrago.monitor.schemas import SampleSource
from astrago.monitor.service import TelemetryService
from astrago.services.context import ServiceContext
from astrago.store.db import create_engine, create_session_factory
from astrago.store.migrate import upgrade_to_head
from astrago.store.models import Workload
from astrago.store.repositories import WorkloadRepository, WorkspaceRepository
from tests.support.postgres import free_port
from tests.support.prometheus import running_prometheus, wait_for_series

MIB = 1024 * 1024
T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def _snapshot() -> Snapshot:
    """Node gpu-node-1: GPU 0 runs replica 1 of `wl-train` (two processes), GPU 1 is in MIG mode and runs
    `wl-nb`; a process of a pod the platform did not start runs on GPU 0 too."""
    mig = MigDevice(
        index=0,
        gpu_instance_id=1,
        compute_instance_id=0,
        uuid="MIG-1",
        profile="1g.10gb",
        memory_total_mib=10240,
    )
    gpu0 = GpuDevice(
        index=0,
        uuid="GPU-0",
        name="NVIDIA H100 80GB HBM3",
        memory_total_mib=81559,
        memory_used_mib=30000,
        utilization_percent=88.0,
        temperature_celsius=61.0,
        power_watts=400.0,
    )
    gpu1 = GpuDevice(
        index=1,
        uuid="GPU-1",
        name="NVIDIA H100 80GB HBM3",
        memory_total_mib=81559,
        mig_enabled=True,
        mig_devices=[mig],
        memory_used_mib=5000,
    )

    def process(pid: int, device: GpuDevice, pod: str, util: float | None, mib: int) -> AttributedProcess:
        on_mig = device.mig_enabled
        proc = GpuProcess(
            pid=pid,
            gpu_index=device.index,
            kind=ProcessKind.COMPUTE,
            name="python",
            used_memory_bytes=mib * MIB,
            gpu_instance_id=1 if on_mig else None,
            compute_instance_id=0 if on_mig else None,
            sm_utilization_percent=util,
        )
        return AttributedProcess(
            proc,
            device,
            mig if on_mig else None,
            command="python train.py",
            in_proc=True,
            pod_uid=f"uid-{pid}",
            namespace="astrago",
            pod=pod,
            container="main",
        )

    return Snapshot(
        source="nvml",
        collected_at=time.time(),
        duration_s=0.01,
        devices=(gpu0, gpu1),
        processes=(
            process(101, gpu0, f"{object_name('wl-train')}-1-abcde", 60.0, 20000),
            process(102, gpu0, f"{object_name('wl-train')}-1-abcde", 25.0, 4000),
            process(103, gpu0, "someone-elses-pod", 3.0, 100),
            process(201, gpu1, object_name("wl-nb"), None, 3000),
        ),
    )


@pytest.fixture
def exporter() -> Iterator[str]:
    body = MetricsRenderer(CollectorHealth()).render(_snapshot())

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def prometheus(tmp_path: Path, exporter: str) -> Iterator[str]:
    jobs = (
        "  - job_name: astrago-gpu\n"
        f"    static_configs: [{{targets: ['{exporter}'], labels: {{node: gpu-node-1}}}}]\n"
    )
    with running_prometheus(tmp_path, jobs) as url:
        wait_for_series(url, "gpu_process_memory_used_bytes", count=4, log=tmp_path / "prometheus.log")
        yield url


@pytest.fixture
async def ctx(tmp_path: Path) -> AsyncIterator[ServiceContext]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'astrago.db'}")
    await upgrade_to_head(engine)
    settings = Settings(data_dir=tmp_path, backend="kubernetes", telemetry_prometheus_url="http://unused")
    context = ServiceContext(sessions=create_session_factory(engine), settings=settings)
    async with context.write() as session:
        space = await WorkspaceRepository(session).add("ml-a", "")
        for workload_id, replicas in (("wl-train", 2), ("wl-nb", 1)):
            WorkloadRepository(session).add(
                Workload(
                    id=workload_id,
                    workspace_id=space.id,
                    name=workload_id,
                    kind="job",
                    status=WorkloadStatus.RUNNING.value,
                    replicas=replicas,
                    spec={"command": ["x"], "resources": {"cpu_milli": 1, "memory_mib": 1, "gpus": 1}},
                )
            )
    yield context
    await engine.dispose()


async def test_exporter_series_land_on_the_replica_of_their_pod(ctx: ServiceContext, prometheus: str) -> None:
    reader = PrometheusReader(prometheus)
    try:
        result = await PrometheusSampler(ctx, reader, "astrago").sample(T0)
    finally:
        await reader.close()
    assert result is not None
    assert (result.replica_rows, result.device_rows, result.unattributed_processes) == (2, 2, 1)
    telemetry = TelemetryService(ctx)
    train = await telemetry.utilisation("wl-train", T0, T0.replace(hour=11))
    assert train is not None
    assert train.gpu_util_mean_percent == pytest.approx(85.0)  # 60 % + 25 % of its two processes
    assert train.memory_peak_bytes == 24000 * MIB
    assert train.sources == [SampleSource.PROMETHEUS]
    notebook = await telemetry.utilisation("wl-nb", T0, T0.replace(hour=11))
    assert notebook is not None
    assert not notebook.attributable  # MIG: memory known, utilisation not (never 0)
    assert notebook.memory_peak_bytes == 3000 * MIB
    states = {s.gpu_index: s for s in await telemetry.gpu_states("gpu-node-1")}
    assert states[0].gpu_util_percent == 88.0
    assert states[0].temperature_celsius == 61.0
    assert states[0].healthy is True


async def test_an_unreachable_prometheus_skips_the_cycle(ctx: ServiceContext) -> None:
    reader = PrometheusReader(f"http://127.0.0.1:{free_port()}", timeout_s=2)
    try:
        with pytest.raises(PrometheusUnavailable, match="did not answer"):
            await PrometheusSampler(ctx, reader, "astrago").sample(T0)
    finally:
        await reader.close()
