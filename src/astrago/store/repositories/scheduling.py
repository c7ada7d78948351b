"""What the scheduler reads on every cycle, as plain column rows (no ORM objects, no identity map).

With 10,000 queued workloads this runs once per scheduling cycle, so each query reads only the columns the
scheduler needs. A workload's resources come as the JSON text of its spec's `resources` member, extracted
by the database: the rest of the spec (command, environment, volumes) is never read or decoded here."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import Executable, Text, cast, select
from sqlalchemy.ext.asyncio import AsyncSession

from astrago.domain.enums import WorkloadStatus
from astrago.store.models import Device, Node, Replica, Workload, Workspace


class QueuedRow(NamedTuple):
    """A pending workload: what it asks for, and the reason and position it shows now."""

    id: str
    workspace: str
    resources: str  # JSON text of spec["resources"]
    replicas: int
    priority: int
    seq: int
    preemptible: bool
    pending_code: str | None
    reason: str | None
    queue_position: int | None


class HoldingRow(NamedTuple):
    """A workload that holds resources (admitted, running or stopping)."""

    id: str
    workspace: str
    resources: str  # JSON text of spec["resources"]
    replicas: int
    priority: int
    seq: int
    preemptible: bool
    admitted_seq: int | None
    stop_requested: str | None


class PlacedReplicaRow(NamedTuple):
    workload_id: str
    node: str
    cpu_milli: int
    memory_mib: int
    gpu_indices: str  # the JSON text of the list of node-local GPU indices
    gpu_milli: int
    mig_profile: str | None
    mig_start: int | None


class NodeRow(NamedTuple):
    name: str
    cpu_milli: int
    memory_mib: int
    schedulable: bool
    labels: dict[str, str]
    gpus_held_by_others: int


@dataclass(frozen=True, slots=True)
class DeviceRow:  # not a NamedTuple: its `index` would shadow tuple.index
    node_name: str
    index: int
    model: str
    memory_mib: int
    uuid: str | None
    healthy: bool
    mig_enabled: bool


_REQUEST_COLUMNS = (
    Workload.id,
    Workspace.name,
    Workload.spec["resources"].as_string(),  # the JSON text, on SQLite, PostgreSQL and MariaDB alike
    Workload.replicas,
    Workload.priority,
    Workload.seq,
    Workload.preemptible,
)


class SchedulingRepository:
    """Each query returns an iterator over rows the database has already sent: a row becomes a typed tuple
    only when the caller reaches it, so 10,000 rows never exist twice over."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def queued(self) -> Iterator[QueuedRow]:
        """Pending workloads in submission order."""
        query = (
            select(*_REQUEST_COLUMNS, Workload.pending_code, Workload.reason, Workload.queue_position)
            .join(Workspace, Workspace.id == Workload.workspace_id)
            .where(Workload.status == WorkloadStatus.PENDING.value)
            .order_by(Workload.seq)
        )
        return map(QueuedRow._make, await self._rows(query))

    async def holding(self, statuses: Collection[WorkloadStatus]) -> Iterator[HoldingRow]:
        """Workloads in `statuses` (the live ones) in submission order."""
        query = (
            select(*_REQUEST_COLUMNS, Workload.admitted_seq, Workload.stop_requested)
            .join(Workspace, Workspace.id == Workload.workspace_id)
            .where(Workload.status.in_([s.value for s in statuses]))
            .order_by(Workload.seq)
        )
        return map(HoldingRow._make, await self._rows(query))

    async def placed_replicas(self, statuses: Collection[WorkloadStatus]) -> Iterator[PlacedReplicaRow]:
        """The replicas of workloads in `statuses`, by workload and replica index."""
        query = (
            select(
                Replica.workload_id,
                Replica.node,
                Replica.cpu_milli,
                Replica.memory_mib,
                cast(Replica.gpu_indices, Text),  # the JSON text: decoded once per distinct text
                Replica.gpu_milli,
                Replica.mig_profile,
                Replica.mig_start,
            )
            .join(Workload, Workload.id == Replica.workload_id)
            .where(Workload.status.in_([s.value for s in statuses]))
            .order_by(Replica.workload_id, Replica.index)
        )
        return map(PlacedReplicaRow._make, await self._rows(query))

    async def nodes(self) -> list[tuple[NodeRow, list[DeviceRow]]]:
        """Every node by name, with its GPUs by index."""
        nodes = select(
            Node.name,
            Node.cpu_milli,
            Node.memory_mib,
            Node.schedulable,
            Node.labels,
            Node.gpus_held_by_others,
        ).order_by(Node.name)
        devices = select(
            Device.node_name,
            Device.index,
            Device.model,
            Device.memory_mib,
            Device.uuid,
            Device.healthy,
            Device.mig_enabled,
        ).order_by(Device.node_name, Device.index)
        by_node: dict[str, list[DeviceRow]] = {}
        for row in await self._rows(devices):
            device = DeviceRow(row[0], row[1], row[2], row[3], row[4], row[5], row[6])
            by_node.setdefault(device.node_name, []).append(device)
        return [(node, by_node.get(node.name, [])) for node in map(NodeRow._make, await self._rows(nodes))]

    async def _rows(self, query: Executable) -> Iterator[Sequence[Any]]:
        # Core execution on the session's connection: plain rows, without the ORM's result machinery.
        return iter(await (await self.session.connection()).execute(query))
