"""Telemetry storage on SQLite, PostgreSQL and MariaDB: the sampler attributes a real process tree to its
replica through the scripted source, the read side reports mean and peak, MIG is "not attributable" (never
0), rollup keeps the means and peaks, retention removes what is too old, a restart writes nothing twice."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from astrago.auth.principal import Principal
from astrago.config import Settings
from astrago.domain.enums import WorkloadStatus
from astrago.gpu.model import MIB
from astrago.gpu.procfs import read_start_time
from astrago.gpu.sources.scripted import ScriptedSource
from astrago.monitor.attribution import ReplicaRef, Root
from astrago.monitor.rollup import roll_up
from astrago.monitor.sampler import GpuSampler
from astrago.monitor.schemas import MIG_NOT_ATTRIBUTABLE, SIMULATED_NO_SOURCE, SampleSource
from astrago.monitor.service import TelemetryService
from astrago.services.context import ServiceContext
from astrago.store.db import create_engine, create_session_factory
from astrago.store.migrate import upgrade_to_head
from astrago.store.models import Device, GpuDeviceSample, Replica, Workload, WorkloadGpuSample
from astrago.store.repositories import NodeRepository, WorkloadRepository, WorkspaceRepository
from astrago.store.repositories.gpu_samples import GpuSampleRepository

NODE = "node-a"
ADMIN = Principal(user_id="admin", username="admin", is_admin=True)
T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


@pytest.fixture
def ctx(sessions: async_sessionmaker[AsyncSession], tmp_path: Path) -> ServiceContext:
    settings = Settings(
        data_dir=tmp_path, simulate_gpus="2xA100-80GB", gpu_source=f"scripted:{tmp_path}/g.yaml"
    )
    return ServiceContext(sessions=sessions, settings=settings)


@pytest.fixture
def runner_tree() -> Iterator[tuple[Root, int, str]]:
    """A stand-in for a replica's runner: a real process whose grandchild does the GPU work, with the
    marker only on the grandchild (so attribution must walk two parents up)."""
    marker = f"gpu-work-{uuid.uuid4().hex[:8]}"
    runner = subprocess.Popen(
        ["sh", "-c", f"sh -c \"exec {sys.executable} -c 'import time; time.sleep(120)' {marker}\"; true"]
    )
    deadline = time.monotonic() + 10
    worker = None
    while time.monotonic() < deadline and worker is None:
        worker = next((pid for pid in _descendants(runner.pid) if marker in _cmdline(pid)), None)
        time.sleep(0.05)
    assert worker is not None
    start = read_start_time(Path(f"/proc/{runner.pid}/stat").read_text())
    yield Root(runner.pid, start, ReplicaRef("wl-job", 1)), worker, marker
    for pid in _descendants(runner.pid):
        os.kill(pid, 9)
    runner.kill()
    runner.wait()


def _descendants(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    children = [int(p) for p in path.read_text().split()] if path.exists() else []
    return children + [grandchild for child in children for grandchild in _descendants(child)]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


async def _seed(ctx: ServiceContext, gpu_indices: list[int]) -> None:
    async with ctx.write() as session:
        space = await WorkspaceRepository(session).add("ml-a", "")
        for workload_id, replicas in (("wl-job", 2), ("wl-other", 1)):
            workload = Workload(
                id=workload_id,
                workspace_id=space.id,
                name=workload_id,
                kind="job",
                status=WorkloadStatus.RUNNING.value,
                replicas=replicas,
                spec={"command": ["true"], "resources": {"cpu_milli": 100, "memory_mib": 64, "gpus": 1}},
            )
            WorkloadRepository(session).add(workload)
            await session.flush()
            for index in range(replicas):
                gpu = gpu_indices[index] if workload_id == "wl-job" else 1
                session.add(
                    Replica(
                        workload_id=workload_id,
                        index=index,
                        node=NODE,
                        cpu_milli=100,
                        memory_mib=64,
                        gpu_indices=[gpu],
                        gpu_milli=1000,
                    )
                )
        await NodeRepository(session).upsert(
            name=NODE,
            backend="local",
            cpu_milli=1000,
            memory_mib=1024,
            schedulable=True,
            simulated=True,
            labels={},
            seen_at=T0,
            devices=[Device(index=i, model="A100-80GB", memory_mib=81920, simulated=True) for i in range(3)],
        )


def _write(path: Path, text: str) -> None:
    path.write_text(text)
    os.utime(path, (time.time() + 1, time.time() + 1))  # a new mtime even within one clock tick


async def test_samples_land_on_the_replica_whose_runner_started_the_process(
    ctx: ServiceContext, tmp_path: Path, runner_tree: tuple[Root, int, str]
) -> None:
    root, _worker, marker = runner_tree
    await _seed(ctx, gpu_indices=[2, 0])  # replica 1 of wl-job holds GPU 0; wl-other holds GPU 1
    script = tmp_path / "g.yaml"
    script.write_text(
        f"gpus: [{{index: 0, memory_total_mib: 81920}}, {{index: 1}}]\n"
        f"processes: [{{gpu: 0, select: {{command: '{marker}'}}, utilization: 80, memory_mib: 2048}}]\n"
    )
    sampler = GpuSampler(ctx, ScriptedSource(script), NODE, lambda: [root])
    first = await sampler.sample(T0)
    assert first is not None
    assert first.unattributed_processes == 0
    _write(script, script.read_text().replace("utilization: 80", "utilization: 40"))
    assert await sampler.sample(T0 + timedelta(seconds=10)) is not None
    assert await sampler.sample(T0 + timedelta(seconds=15)) is None  # same period: not sampled twice

    telemetry = TelemetryService(ctx)
    summary = await telemetry.utilisation("wl-job", T0, T0 + timedelta(minutes=1))
    assert summary is not None
    assert summary.attributable
    assert summary.samples == 2  # only replica 1 on GPU 0: replica 0's GPU 2 is not in the reading
    assert summary.gpu_util_mean_percent == pytest.approx(60.0)
    assert summary.gpu_util_peak_percent == 80.0
    assert summary.memory_peak_bytes == 2048 * MIB
    assert summary.gpu_seconds_used == pytest.approx((0.8 + 0.4) * 10)
    assert summary.sources == [SampleSource.SCRIPTED]
    # wl-other holds GPU 1 and runs nothing there: a measured 0, not an unknown
    other = await telemetry.utilisation("wl-other", T0, T0 + timedelta(minutes=1))
    assert other is not None
    assert other.gpu_util_mean_percent == 0.0
    assert other.memory_peak_bytes == 0
    async with ctx.read() as session:
        rows = await GpuSampleRepository(session).workload_rows("wl-job", T0, T0 + timedelta(minutes=1))
    assert {(r.replica_index, r.gpu_index, r.node) for r in rows} == {(1, 0, NODE)}

    usage = await telemetry.workload_usage(ADMIN, "wl-job", T0, T0 + timedelta(minutes=1), 10)
    (series,) = usage.series
    assert [p.gpu_util_percent for p in series.points] == [80.0, 40.0]

    states = await telemetry.gpu_states(NODE)
    assert [(s.gpu_index, s.gpu_util_percent) for s in states[:2]] == [(0, 40.0), (1, 0.0)]
    assert states[0].memory_total_bytes == 81920 * MIB
    assert states[0].source is SampleSource.SCRIPTED
    assert states[2].gpu_util_percent is None
    assert states[2].reason is not None

    # a new sampler (a restarted server) does not write the last period again
    again = GpuSampler(ctx, ScriptedSource(script), NODE, lambda: [root])
    await again._resume()
    assert await again.sample(T0 + timedelta(seconds=12)) is None


async def test_mig_is_not_attributable_and_never_zero(
    ctx: ServiceContext, tmp_path: Path, runner_tree: tuple[Root, int, str]
) -> None:
    root, _, marker = runner_tree
    await _seed(ctx, gpu_indices=[2, 0])
    script = tmp_path / "g.yaml"
    script.write_text(
        f"gpus: [{{index: 0, mig: true}}]\n"
        f"processes: [{{gpu: 0, select: {{command: '{marker}'}}, utilization: 80, memory_mib: 100}}]\n"
    )
    await GpuSampler(ctx, ScriptedSource(script), NODE, lambda: [root]).sample(T0)
    telemetry = TelemetryService(ctx)
    summary = await telemetry.utilisation("wl-job", T0, T0 + timedelta(minutes=1))
    assert summary is not None
    assert not summary.attributable
    assert summary.gpu_util_mean_percent is None
    assert summary.gpu_util_peak_percent is None
    assert summary.memory_peak_bytes == 100 * MIB
    assert summary.reason == MIG_NOT_ATTRIBUTABLE


@pytest.fixture
async def sqlite_ctx(tmp_path: Path) -> AsyncIterator[ServiceContext]:
    """For what no database changes: reading no rows at all."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'alone.db'}")
    await upgrade_to_head(engine)
    yield ServiceContext(sessions=create_session_factory(engine), settings=Settings(data_dir=tmp_path))
    await engine.dispose()


async def test_without_a_source_simulated_gpus_say_so(sqlite_ctx: ServiceContext) -> None:
    ctx = sqlite_ctx
    ctx.settings.simulate_gpus = "2xA100-80GB"
    await _seed(ctx, gpu_indices=[2, 0])
    ctx.settings.gpu_source = None
    usage = await TelemetryService(ctx).workload_usage(ADMIN, "wl-job", T0, T0 + timedelta(hours=1), None)
    assert usage.reason == SIMULATED_NO_SOURCE
    assert usage.series == []
    assert not usage.attributable
    assert all(s.reason == SIMULATED_NO_SOURCE for s in await TelemetryService(ctx).gpu_states(NODE))


async def test_rollup_keeps_means_and_peaks_and_retention_drops_the_oldest(ctx: ServiceContext) -> None:
    await _seed(ctx, gpu_indices=[2, 0])
    now = T0 + timedelta(days=2)
    rows: list[WorkloadGpuSample | GpuDeviceSample] = []
    for i in range(30 + 6):  # a whole 5-minute bucket, then one minute of the next
        util = 100.0 if i == 3 else 10.0
        rows.append(
            WorkloadGpuSample(
                workload_id="wl-job",
                replica_index=0,
                node=NODE,
                gpu_index=2,
                at=T0 + timedelta(seconds=10 * i),
                resolution_s=10,
                sampled_s=10,
                gpu_util_percent=util,
                memory_used_bytes=(i + 1) * MIB,
                source="scripted",
            )
        )
        rows.append(
            GpuDeviceSample(
                node=NODE,
                gpu_index=2,
                at=T0 + timedelta(seconds=10 * i),
                resolution_s=10,
                sampled_s=10,
                gpu_util_percent=util,
                memory_used_bytes=MIB,
                memory_total_bytes=80 * MIB,
                temperature_celsius=40.0,
                power_watts=None,
                healthy=True,
                mig_enabled=False,
                source="scripted",
            )
        )
    ancient = WorkloadGpuSample(
        workload_id="wl-job",
        replica_index=0,
        node=NODE,
        gpu_index=2,
        at=now - timedelta(days=91),
        resolution_s=300,
        sampled_s=300,
        gpu_util_percent=1.0,
        memory_used_bytes=MIB,
        source="scripted",
    )
    async with ctx.write() as session:
        session.add_all([*rows, ancient])
    telemetry = TelemetryService(ctx)
    before = await telemetry.utilisation("wl-job", T0, T0 + timedelta(hours=1))
    result = await roll_up(ctx, now, raw_retention=timedelta(days=1), retention=timedelta(days=90))
    assert (result.rolled_up, result.written, result.expired) == (72, 4, 1)
    after = await telemetry.utilisation("wl-job", T0, T0 + timedelta(hours=1))
    assert before is not None
    assert after is not None
    assert after.gpu_util_mean_percent == pytest.approx(before.gpu_util_mean_percent)
    assert after.gpu_util_peak_percent == 100.0
    assert after.memory_peak_bytes == 36 * MIB
    assert after.gpu_seconds_used == pytest.approx(before.gpu_seconds_used)
    async with ctx.read() as session:
        kept = await GpuSampleRepository(session).workload_rows("wl-job", T0, T0 + timedelta(hours=1))
        assert [(r.resolution_s, r.sampled_s) for r in kept] == [(300, 300), (300, 60)]
        assert await GpuSampleRepository(session).count() == 2
    again = await roll_up(ctx, now, raw_retention=timedelta(days=1), retention=timedelta(days=90))
    assert (again.rolled_up, again.written, again.expired) == (0, 0, 0)


async def test_a_finished_workloads_usage_covers_its_run_by_default(sqlite_ctx: ServiceContext) -> None:
    ctx = sqlite_ctx
    await _seed(ctx, gpu_indices=[2, 0])
    async with ctx.write() as session:
        workload = await WorkloadRepository(session).get("wl-job")
        assert workload is not None
        workload.status = WorkloadStatus.SUCCEEDED.value
        workload.started_at, workload.finished_at = T0, T0 + timedelta(minutes=5)
        session.add(
            WorkloadGpuSample(
                workload_id="wl-job", replica_index=0, node=NODE, gpu_index=2, at=T0 + timedelta(minutes=1),
                resolution_s=10, sampled_s=10, gpu_util_percent=33.0, memory_used_bytes=MIB, source="nvml",
            )
        )  # fmt: skip
    usage = await TelemetryService(ctx).workload_usage(ADMIN, "wl-job", None, None, None)
    assert (usage.since, usage.until) == (T0, T0 + timedelta(minutes=5, seconds=1))
    assert usage.summary.gpu_util_mean_percent == 33.0
