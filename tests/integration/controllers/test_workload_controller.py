"""The workload controller against an in-memory backend (a fake: it lets the test decide what the
"processes" do, e.g. fail to launch or die one by one), with the real services, engine and database."""

from __future__ import annotations

import asyncio
import io
import tarfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from astrago.auth.principal import Principal
from astrago.backends.base import (
    BackendCapabilities,
    BackendError,
    BackendUnavailable,
    Capability,
    DeviceInventory,
    LaunchSpec,
    NodeInventory,
    ReplicaObservation,
)
from astrago.controllers.launch import launch_spec
from astrago.controllers.workloads import WorkloadController
from astrago.domain.enums import ReplicaState
from astrago.services.errors import InvalidInput
from astrago.services.registry import Services
from astrago.services.schemas import WorkloadSubmit, WorkspaceCreate
from astrago.store.models import Workload
from astrago.store.repositories import UserRepository, WorkloadRepository
from tests.support.services import services_on

FAKE_CAPABILITIES = BackendCapabilities(backend="fake", supported=frozenset({Capability.COMMANDS}))


class FakeBackend:
    name = "fake"
    capabilities = FAKE_CAPABILITIES

    def __init__(
        self, gpus: int = 4, fail_launch: bool = False, held_by_others: int = 0, model: str = "A100-80GB"
    ) -> None:
        self.gpus = gpus
        self.held_by_others = held_by_others
        self.model = model
        self.fail_launch = fail_launch
        self.started: list[str] = []
        self.stopped: list[tuple[str, str]] = []
        self.forgotten: list[str] = []
        self.forget_failures = 0  # how many `forget` calls fail before one succeeds
        self.unavailable_starts = 0  # how many starts fail as an API server answering 500 would
        self.gates: dict[str, asyncio.Event] = {}  # a start of these ids waits for its gate
        self.replicas: dict[tuple[str, int], ReplicaObservation] = {}

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def inventory(self) -> list[NodeInventory]:
        devices = tuple(
            DeviceInventory(index=i, model=self.model, memory_mib=81920) for i in range(self.gpus)
        )
        return [
            NodeInventory(
                name="node-1",
                cpu_milli=64000,
                memory_mib=512 * 1024,
                devices=devices,
                gpus_held_by_others=self.held_by_others,
            )
        ]

    async def start(self, spec: LaunchSpec) -> None:
        if spec.workload_id in self.gates:  # e.g. a Kubernetes start waiting for an old run's objects
            await self.gates[spec.workload_id].wait()
        if self.unavailable_starts:
            self.unavailable_starts -= 1
            raise BackendUnavailable(
                "create Job ag-x: Kubernetes answered 500: etcdserver: request timed out"
            )
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

    async def forget(self, workload_id: str) -> None:
        if self.forget_failures:
            self.forget_failures -= 1
            raise BackendError("the API server answered 500")
        self.forgotten.append(workload_id)

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
    async with services_on(database_url, tmp_path, FAKE_CAPABILITIES) as registry:
        async with registry.ctx.read() as session:
            admin = await UserRepository(session).by_username("admin")
        assert admin is not None
        ADMIN = Principal(user_id=admin.id, username="admin", is_admin=True)
        await registry.workspaces.create(ADMIN, WorkspaceCreate(name="ml-a"))
        yield registry


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
        await controller.drain()
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
    services: Services, tmp_path: Path
) -> None:
    backend = FakeBackend()
    controller = await _controller(services, backend)
    workload_id = await _submit(services)
    await controller.schedule_once()
    # the crash window: the backend started it, but the database never heard back
    await backend.start(launch_spec(await _row(services, workload_id), tmp_path / "volumes"))
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


async def test_gpus_held_by_others_are_not_given_out_and_the_reason_says_so(services: Services) -> None:
    backend = FakeBackend(gpus=4, held_by_others=3)
    controller = await _controller(services, backend)
    two = await _submit(services, gpus=2)
    await _settle(controller)
    waiting = await services.workloads.get(ADMIN, two)
    assert waiting.status == "PENDING"
    assert "3 GPUs there are held by pods AstraGo did not create" in (waiting.reason or "")
    one = await _submit(services, gpus=1)
    await _settle(controller)
    assert (await services.workloads.get(ADMIN, one)).status == "RUNNING"
    assert backend.started == [one]


async def test_one_slow_start_does_not_hold_up_the_others(services: Services) -> None:
    backend = FakeBackend()
    controller = await _controller(services, backend)
    slow = await _submit(services)
    await controller.schedule_once()
    backend.gates[slow] = asyncio.Event()
    await controller.launch_admitted()  # returns at once: the slow start runs in its own task
    fast = await _submit(services)
    await controller.schedule_once()
    await controller.launch_admitted()
    for _ in range(200):
        if fast in backend.started:
            break
        await asyncio.sleep(0.01)
    assert backend.started == [fast]
    await controller.full_reconcile()
    assert (await services.workloads.get(ADMIN, fast)).status == "RUNNING"
    assert (await services.workloads.get(ADMIN, slow)).status == "ADMITTED"
    await controller.launch_admitted()  # a second cycle does not start the slow one twice
    backend.gates[slow].set()
    await controller.drain()
    await controller.full_reconcile()
    assert (await services.workloads.get(ADMIN, slow)).status == "RUNNING"
    assert backend.started == [fast, slow]


async def test_a_failed_forget_is_retried_with_backoff_and_recorded(services: Services) -> None:
    backend = FakeBackend()
    controller = await _controller(services, backend)
    controller._cleanups.backoff_s = (0.0, 3600.0)
    workload_id = await _submit(services)
    await _settle(controller)
    backend.forget_failures = 2
    backend.set(workload_id, 0, ReplicaState.SUCCEEDED, exit_code=0)
    await controller.full_reconcile()  # finishes it; the first forget fails
    assert (await services.workloads.get(ADMIN, workload_id)).status == "SUCCEEDED"
    assert backend.forgotten == []
    await controller.retry_cleanups()  # fails again, now 3600 s until the next try
    await controller.retry_cleanups()  # not due yet
    assert backend.forgotten == []
    controller._cleanups.pending[workload_id].due = 0.0
    await controller.retry_cleanups()
    assert backend.forgotten == [workload_id]
    assert controller._cleanups.pending == {}
    events = [(e.type, e.reason) for e in await services.workloads.events(ADMIN, workload_id)]
    failed = [reason for kind, reason in events if kind == "CleanupFailed"]
    assert len(failed) == 2
    assert failed[0].startswith("forget failed (BackendError: the API server answered 500); retrying in 0s")
    assert ("CleanedUp", "forget succeeded after earlier failures") in events


async def test_a_quiet_cycle_reads_columns_and_writes_nothing(services: Services) -> None:
    backend = FakeBackend(gpus=2)
    controller = await _controller(services, backend)
    for _ in range(3):
        await _submit(services)  # two run, one waits
    await _settle(controller)
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(" ".join(statement.split()))

    engine = services.ctx.sessions.kw["bind"]
    event.listen(engine.sync_engine, "before_cursor_execute", seen)
    try:
        await controller.full_reconcile()
        await controller.apply_watched()
        await controller.handle_stop_requests()
        await controller.launch_admitted()
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", seen)
    writes = [s for s in statements if s.split()[0] in ("INSERT", "UPDATE", "DELETE")]
    assert writes == []
    # no step loads every live workload as rows: only the few asked to stop or waiting to launch
    every_live_row = [
        s
        for s in statements
        if "workloads.spec" in s and "status IN" in s and "stop_requested IS NOT" not in s
    ]
    assert every_live_row == []


async def test_an_unavailable_backend_delays_the_start_instead_of_failing_it(services: Services) -> None:
    backend = FakeBackend()
    backend.unavailable_starts = 2
    controller = await _controller(services, backend)
    controller.launch_backoff_s = (0.0, 3600.0)
    workload_id = await _submit(services)
    await _settle(controller, rounds=2)  # two tries: the second one is followed by an hour's wait
    assert (await services.workloads.get(ADMIN, workload_id)).status == "ADMITTED"
    assert backend.started == []
    controller._launch_retries[workload_id] = (2, 0.0)  # the hour has passed
    await _settle(controller)
    assert (await services.workloads.get(ADMIN, workload_id)).status == "RUNNING"
    assert backend.started == [workload_id]
    events = await services.workloads.events(ADMIN, workload_id)
    delayed = [e.reason for e in events if e.type == "StartDelayed"]
    cause = "create Job ag-x: Kubernetes answered 500: etcdserver: request timed out"
    assert delayed == [
        f"the backend is unavailable: {cause}; trying again in {delay}s" for delay in ("0", "3600")
    ]


async def test_a_start_that_goes_through_brings_the_delayed_ones_forward(services: Services) -> None:
    """After an outage the backend answers again: the starts waiting out a long backoff go at once."""
    backend = FakeBackend()
    backend.unavailable_starts = 2
    controller = await _controller(services, backend)
    controller.launch_backoff_s = (3600.0,)
    first, second = await _submit(services), await _submit(services)
    await _settle(controller)  # both fail: an hour's wait each
    assert backend.started == []
    controller._launch_retries[first] = (1, 0.0)  # the first one's hour has passed (the outage is over)
    await _settle(controller, rounds=2)
    assert sorted(backend.started) == sorted([first, second])  # the second did not wait out its hour
    assert (await services.workloads.get(ADMIN, second)).status == "RUNNING"


async def test_a_backend_that_answers_a_full_observation_brings_delayed_starts_forward(
    services: Services,
) -> None:
    """The API server is down: the start waits an hour, and the periodic full observation fails too. Once
    a full observation succeeds again the backend is back, so the start goes at once."""
    backend = FakeBackend()
    backend.unavailable_starts = 1
    controller = await _controller(services, backend)
    controller.launch_backoff_s = (3600.0,)
    workload_id = await _submit(services)
    await _settle(controller)
    assert backend.started == []
    observe = backend.observe

    async def api_server_down() -> list[ReplicaObservation]:
        raise BackendUnavailable("list Jobs in namespace astrago: Kubernetes answered 500")

    backend.observe = api_server_down  # type: ignore[method-assign]
    with pytest.raises(BackendUnavailable):
        await controller.full_reconcile()
    backend.observe = observe  # type: ignore[method-assign]
    await _settle(controller)
    assert backend.started == [workload_id]


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
