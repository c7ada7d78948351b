"""The workload controller against an in-memory backend (a fake: it lets the test decide what the
"processes" do, e.g. fail to launch or die one by one), with the real services, engine and database."""

from __future__ import annotations

import io
import tarfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from astrago.auth.principal import Principal
from astrago.backends.base import (
    BackendCapabilities,
    BackendError,
    Capability,
    DeviceInventory,
    LaunchSpec,
    NodeInventory,
    ReplicaObservation,
)
from astrago.config import Settings
from astrago.controllers.launch import launch_spec
from astrago.controllers.workloads import WorkloadController
from astrago.domain.enums import ReplicaState
from astrago.services.context import ServiceContext
from astrago.services.errors import InvalidInput
from astrago.services.registry import Services
from astrago.services.schemas import WorkloadSubmit, WorkspaceCreate
from astrago.store.db import create_engine, create_session_factory
from astrago.store.migrate import upgrade_to_head
from astrago.store.models import Workload
from astrago.store.repositories import UserRepository, WorkloadRepository

FAKE_CAPABILITIES = BackendCapabilities(backend="fake", supported=frozenset({Capability.COMMANDS}))


class FakeBackend:
    name = "fake"
    capabilities = FAKE_CAPABILITIES

    def __init__(self, gpus: int = 4, fail_launch: bool = False, model: str = "A100-80GB") -> None:
        self.gpus = gpus
        self.model = model
        self.fail_launch = fail_launch
        self.started: list[str] = []
        self.stopped: list[tuple[str, str]] = []
        self.replicas: dict[tuple[str, int], ReplicaObservation] = {}

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def inventory(self) -> list[NodeInventory]:
        devices = tuple(
            DeviceInventory(index=i, model=self.model, memory_mib=81920) for i in range(self.gpus)
        )
        return [NodeInventory(name="node-1", cpu_milli=64000, memory_mib=512 * 1024, devices=devices)]

    async def start(self, spec: LaunchSpec) -> None:
        if self.fail_launch:
            raise BackendError("image pull failed: registry.local/train:1 not found")
        if any(key[0] == spec.workload_id for key in self.replicas):
            return  # idempotent, as the protocol requires
        self.started.append(spec.workload_id)
        for replica in spec.replicas:
            self.set(spec.workload_id, replica.index, ReplicaState.RUNNING)

    async def stop(self, workload_id: str, grace_s: float, reason: str) -> None:
        self.stopped.append((workload_id, reason))
        for (wid, index), seen in list(self.replicas.items()):
            if wid == workload_id and seen.state == ReplicaState.RUNNING:
                self.set(wid, index, ReplicaState.STOPPED, reason=reason)

    async def observe(self) -> list[ReplicaObservation]:
        return list(self.replicas.values())

    async def watch(self) -> AsyncIterator[ReplicaObservation]:
        for _ in ():
            yield _

    async def logs(self, workload_id: str, replica_index: int, follow: bool) -> AsyncIterator[bytes]:
        yield b""

    async def forget(self, workload_id: str) -> None: ...

    def set(
        self,
        workload_id: str,
        index: int,
        state: ReplicaState,
        exit_code: int | None = None,
        reason: str = "",
    ) -> None:
        self.replicas[(workload_id, index)] = ReplicaObservation(
            workload_id, index, state, exit_code=exit_code, reason=reason or None
        )


ADMIN = Principal(user_id="", username="admin", is_admin=True)  # user_id is set by the fixture


@pytest.fixture
async def services(database_url: str, tmp_path: Path) -> AsyncIterator[Services]:
    global ADMIN
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
        admin = await UserRepository(session).by_username("admin")
    assert admin is not None
    ADMIN = Principal(user_id=admin.id, username="admin", is_admin=True)
    await registry.workspaces.create(ADMIN, WorkspaceCreate(name="ml-a"))
    yield registry
    await engine.dispose()


async def _controller(services: Services, backend: FakeBackend) -> WorkloadController:
    controller = WorkloadController(services.ctx, backend)
    await controller.sync_inventory()
    return controller


async def _submit(services: Services, gpus: int = 1, replicas: int = 1) -> str:
    body = WorkloadSubmit(
        workspace="ml-a",
        command=["train"],
        replicas=replicas,
        resources={"gpus": gpus, "cpu": 1, "memory": "1Gi"},
    )
    return (await services.workloads.submit(ADMIN, body)).id


async def _settle(controller: WorkloadController, rounds: int = 3) -> None:
    for _ in range(rounds):
        await controller.full_reconcile()
        await controller.handle_stop_requests()
        await controller.schedule_once()
        await controller.launch_admitted()
    for task in list(controller._stopping.values()):
        await task
    await controller.full_reconcile()


async def test_a_launch_failure_fails_the_workload_with_the_backend_reason(services: Services) -> None:
    backend = FakeBackend(fail_launch=True)
    controller = await _controller(services, backend)
    workload_id = await _submit(services)
    await _settle(controller)
    workload = await services.workloads.get(ADMIN, workload_id)
    assert workload.status == "FAILED"
    assert workload.reason == "could not start: image pull failed: registry.local/train:1 not found"


async def test_one_failed_replica_stops_the_gang_and_fails_it(services: Services) -> None:
    backend = FakeBackend()
    controller = await _controller(services, backend)
    workload_id = await _submit(services, replicas=3)
    await _settle(controller)
    assert (await services.workloads.get(ADMIN, workload_id)).status == "RUNNING"
    backend.set(workload_id, 1, ReplicaState.FAILED, exit_code=2, reason="exited with code 2")
    await _settle(controller)
    workload = await services.workloads.get(ADMIN, workload_id)
    assert workload.status == "FAILED"
    assert workload.reason == "replica 1: exited with code 2"
    assert [state.state for state in workload.placements] == ["STOPPED", "FAILED", "STOPPED"]
    assert backend.started == [workload_id]


async def test_restart_adopts_what_the_backend_still_runs_and_never_starts_it_again(
    services: Services,
) -> None:
    backend = FakeBackend()
    controller = await _controller(services, backend)
    workload_id = await _submit(services)
    await controller.schedule_once()
    # the crash window: the backend started it, but the database never heard back
    await backend.start(launch_spec(await _row(services, workload_id)))
    restarted = await _controller(services, backend)
    await _settle(restarted)
    assert (await services.workloads.get(ADMIN, workload_id)).status == "RUNNING"
    assert backend.started == [workload_id]


async def _row(services: Services, workload_id: str) -> Workload:
    async with services.ctx.read() as session:
        workload = await WorkloadRepository(session).get(workload_id)
    assert workload is not None
    return workload


async def test_replicas_the_backend_forgot_are_lost(services: Services) -> None:
    backend = FakeBackend()
    controller = await _controller(services, backend)
    workload_id = await _submit(services, replicas=2)
    await _settle(controller)
    backend.replicas.clear()  # e.g. the node and its processes are gone
    await _settle(controller)
    workload = await services.workloads.get(ADMIN, workload_id)
    assert workload.status == "FAILED"
    assert "no longer knows this replica" in (workload.reason or "")


async def test_a_cluster_named_gpu_model_is_asked_for_by_its_canonical_name(
    services: Services,
) -> None:
    """GPU feature discovery labels Kubernetes nodes `NVIDIA-A100-SXM4-80GB` (the kubernetes backend reports
    that label as the model); requests, quotas and `astrago nodes` use `A100-80GB`."""
    backend = FakeBackend(model="NVIDIA-A100-SXM4-80GB")
    controller = await _controller(services, backend)
    node = (await services.nodes.list(ADMIN))[0]
    assert {(d.model, d.product) for d in node.devices} == {("A100-80GB", "NVIDIA-A100-SXM4-80GB")}

    for asked in ("A100-80GB", "NVIDIA-A100-SXM4-80GB", "a100"):
        body = WorkloadSubmit(workspace="ml-a", command=["train"], resources={"gpus": 1, "gpu_model": asked})
        workload = await services.workloads.submit(ADMIN, body)
        assert workload.spec["resources"]["gpu_model"] == "A100-80GB"
    await _settle(controller)
    assert len(backend.started) == 3

    unknown = WorkloadSubmit(workspace="ml-a", command=["train"], resources={"gpus": 1, "gpu_model": "H100"})
    with pytest.raises(InvalidInput, match="no GPU of model 'H100' here; the models that exist: A100-80GB"):
        await services.workloads.submit(ADMIN, unknown)


async def test_code_bundles_expire_unless_an_unfinished_workload_needs_them(services: Services) -> None:
    await _controller(services, FakeBackend())  # registers a node, so submissions are placeable

    def archive() -> bytes:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            info = tarfile.TarInfo("train.py")
            info.size = 5
            tar.addfile(info, io.BytesIO(b"print"))
        return buffer.getvalue()

    async def chunks() -> AsyncIterator[bytes]:
        yield archive()

    uploads = services.code_bundles
    needed = await uploads.upload(ADMIN, chunks())
    await services.workloads.submit(ADMIN, WorkloadSubmit(workspace="ml-a", command=["x"], code=needed.id))
    unused = await uploads.upload(ADMIN, chunks())
    services.ctx.settings.code_bundle_retention_days = 1e-9  # both are past it now
    await uploads.upload(ADMIN, chunks())

    assert uploads.store.get(needed.id) is not None  # its workload is still queued
    assert uploads.store.get(unused.id) is None
    assert not uploads.store.archive_path(unused.id).exists()
