"""The workload controller records the usage ledger's allocation intervals: one per replica run, opened at
the backend's recorded start, closed at its recorded end, across restarts and preemptions.

Against the in-memory fake backend of `test_workload_controller` (the test decides when "processes"
start and end), with the real services and database (SQLite, PostgreSQL, MariaDB)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from astrago.auth.principal import Principal
from astrago.backends.base import ReplicaObservation
from astrago.config import Settings
from astrago.controllers.workloads import WorkloadController
from astrago.domain.enums import ReplicaState
from astrago.domain.usage import UsageGroupBy
from astrago.services.context import ServiceContext
from astrago.services.registry import Services
from astrago.services.schemas import WorkloadSubmit, WorkspaceCreate
from astrago.services.usage import UsageQuery
from astrago.store.db import create_engine, create_session_factory
from astrago.store.migrate import upgrade_to_head
from astrago.store.models import AllocationInterval
from astrago.store.repositories import AllocationRepository, UserRepository
from tests.integration.controllers.test_workload_controller import FAKE_CAPABILITIES, FakeBackend

T0 = datetime(2026, 11, 30, 22, 0, tzinfo=UTC)  # two hours before midnight


@pytest.fixture
async def services(database_url: str, tmp_path: Path) -> AsyncIterator[tuple[Services, Principal]]:
    engine = create_engine(database_url)
    await upgrade_to_head(engine)
    ctx = ServiceContext(
        create_session_factory(engine),
        Settings(data_dir=tmp_path, admin_password="x" * 12),
        FAKE_CAPABILITIES,
    )
    registry = Services.build(ctx)
    await registry.auth.ensure_admin()
    async with ctx.read() as session:
        admin_row = await UserRepository(session).by_username("admin")
    assert admin_row is not None
    admin = Principal(user_id=admin_row.id, username="admin", is_admin=True)
    await registry.workspaces.create(admin, WorkspaceCreate(name="ml-a"))
    yield registry, admin
    await engine.dispose()


async def _submit(
    services: Services, admin: Principal, gpus: int, priority: int = 0, replicas: int = 1
) -> str:
    body = WorkloadSubmit(
        workspace="ml-a",
        command=["train"],
        replicas=replicas,
        priority=priority,
        resources={"gpus": gpus, "cpu": 2, "memory": "4Gi"},
    )
    return (await services.workloads.submit(admin, body)).id


async def _settle(controller: WorkloadController, rounds: int = 3) -> None:
    for _ in range(rounds):
        await controller.full_reconcile()
        await controller.handle_stop_requests()
        await controller.schedule_once()
        await controller.launch_admitted()
        await controller.drain()
    await controller.full_reconcile()


async def _launch(controller: WorkloadController) -> None:
    """Admit and start what is queued, without observing it yet (the test reports its times)."""
    await controller.schedule_once()
    await controller.launch_admitted()
    await controller.drain()


def _report(
    backend: FakeBackend, workload_id: str, index: int, state: ReplicaState, **times: datetime
) -> None:
    """What the backend says about a replica, with the times its runner recorded."""
    backend.replicas[(workload_id, index)] = ReplicaObservation(
        workload_id,
        index,
        state,
        exit_code=0 if state == ReplicaState.SUCCEEDED else None,
        started_at=times["started"].timestamp() if "started" in times else None,
        finished_at=times["finished"].timestamp() if "finished" in times else None,
    )


async def _intervals(services: Services, workload_id: str) -> list[AllocationInterval]:
    async with services.ctx.read() as session:
        return list(await AllocationRepository(session).for_workload(workload_id))


async def test_a_job_across_midnight_is_recorded_at_its_backend_times_and_split_by_day(
    services: tuple[Services, Principal],
) -> None:
    registry, admin = services
    backend = FakeBackend(gpus=4)
    controller = WorkloadController(registry.ctx, backend)
    await controller.sync_inventory()
    workload_id = await _submit(registry, admin, gpus=2, replicas=2)
    await _launch(controller)
    for index in (0, 1):
        _report(backend, workload_id, index, ReplicaState.RUNNING, started=T0)
    await _settle(controller)
    [first, second] = await _intervals(registry, workload_id)
    assert (first.started_at, first.ended_at) == (T0, None)
    assert (first.gpu_count, first.gpu_milli, first.gpu_model) == (2, 2000, "A100-80GB")
    assert (first.cpu_milli, first.memory_mib, first.workspace, first.username) == (
        2000,
        4096,
        "ml-a",
        "admin",
    )
    assert second.replica_index == 1

    end = T0 + timedelta(hours=3)  # 01:00 the next day
    for index in (0, 1):
        _report(backend, workload_id, index, ReplicaState.SUCCEEDED, started=T0, finished=end)
    await _settle(controller)
    assert [i.ended_at for i in await _intervals(registry, workload_id)] == [end, end]

    report = await registry.usage.report(
        admin, UsageQuery(start=T0.date(), end=end.date(), by=UsageGroupBy.DAY), now=end + timedelta(days=1)
    )
    by_day = {row.key: row for row in report.rows}
    # 2 replicas × 2 GPUs: 4 GPUs for 2 hours before midnight, 1 hour after
    assert by_day["2026-11-30"].gpu_hours == 8
    assert by_day["2026-12-01"].gpu_hours == 4
    assert report.total.gpu_hours == 12
    assert report.total.cpu_core_hours == 2 * 2 * 3
    assert report.total.memory_gib_hours == 2 * 4 * 3
    assert report.total.gpu_hours_used is None  # no telemetry: unknown, never 0
    assert report.total.allocations == 2


async def test_a_restarted_controller_adopts_and_closes_at_the_recorded_end_once(
    services: tuple[Services, Principal],
) -> None:
    registry, admin = services
    backend = FakeBackend(gpus=1)
    controller = WorkloadController(registry.ctx, backend)
    await controller.sync_inventory()
    workload_id = await _submit(registry, admin, gpus=1)
    await _launch(controller)
    _report(backend, workload_id, 0, ReplicaState.RUNNING, started=T0)
    await _settle(controller)
    # the server is down while the job ends; a new controller (a restarted server) reads what it recorded
    _report(backend, workload_id, 0, ReplicaState.SUCCEEDED, started=T0, finished=T0 + timedelta(minutes=90))
    restarted = WorkloadController(registry.ctx, backend)
    await restarted.sync_inventory()
    await _settle(restarted)
    await _settle(WorkloadController(registry.ctx, backend))  # and again: nothing changes twice
    [interval] = await _intervals(registry, workload_id)
    assert (interval.started_at, interval.ended_at) == (T0, T0 + timedelta(minutes=90))


async def test_a_job_that_ran_entirely_while_the_server_was_down_is_recorded(
    services: tuple[Services, Principal],
) -> None:
    registry, admin = services
    backend = FakeBackend(gpus=1)
    controller = WorkloadController(registry.ctx, backend)
    await controller.sync_inventory()
    workload_id = await _submit(registry, admin, gpus=1)
    await _launch(controller)
    backend.replicas.clear()  # nothing observed yet; then it runs and ends unseen
    _report(backend, workload_id, 0, ReplicaState.SUCCEEDED, started=T0, finished=T0 + timedelta(hours=1))
    await _settle(WorkloadController(registry.ctx, backend))
    [interval] = await _intervals(registry, workload_id)
    assert (interval.started_at, interval.ended_at) == (T0, T0 + timedelta(hours=1))


async def test_a_preempted_job_has_two_intervals(services: tuple[Services, Principal]) -> None:
    registry, admin = services
    backend = FakeBackend(gpus=2)
    controller = WorkloadController(registry.ctx, backend)
    await controller.sync_inventory()
    low = await _submit(registry, admin, gpus=2, priority=-10)
    await _settle(controller)
    assert (await registry.workloads.get(admin, low)).status == "RUNNING"
    high = await _submit(registry, admin, gpus=2, priority=100)
    await _settle(controller)  # the fake backend stops `low` at once; it goes back to the queue
    assert (await registry.workloads.get(admin, high)).status == "RUNNING"
    [first] = await _intervals(registry, low)
    assert first.ended_at is not None
    backend.set(high, 0, ReplicaState.SUCCEEDED, exit_code=0)
    backend.replicas.pop((low, 0), None)  # its first run is over and forgotten, as a backend would
    await _settle(controller)
    assert (await registry.workloads.get(admin, low)).status == "RUNNING"
    intervals = await _intervals(registry, low)
    assert len(intervals) == 2
    assert intervals[0].ended_at is not None
    assert intervals[1].ended_at is None
    assert intervals[1].started_at >= intervals[0].ended_at
