from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from astrago.domain.enums import WorkloadKind, WorkloadStatus
from astrago.store.models import Replica, Workload
from astrago.store.repositories.keyset import older_than


@dataclass(frozen=True, slots=True)
class Allocation:
    """What one placed replica holds on its node (columns only: no workload rows are loaded)."""

    node: str
    cpu_milli: int
    memory_mib: int
    gpu_indices: list[int]
    gpu_milli: int


@dataclass(frozen=True, slots=True)
class ReplicaRow:
    index: int
    state: str | None
    exit_code: int | None
    reason: str | None
    started_at: datetime | None
    finished_at: datetime | None


@dataclass(slots=True)
class LiveRow:
    """A live workload's status columns and its replicas' observed columns (no ORM objects)."""

    id: str
    status: str
    launched: bool
    stop_requested: str | None
    stop_reason: str | None
    replicas: list[ReplicaRow]


@dataclass(frozen=True, slots=True)
class WorkloadPage:
    items: Sequence[Workload]
    total: int
    next_cursor: int | None  # pass back as `cursor` for the next (older) page


class WorkloadRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, workload_id: str, for_update: bool = False) -> Workload | None:
        query = select(Workload).where(Workload.id == workload_id)
        if for_update:
            query = query.with_for_update()
        return await self.session.scalar(query)

    async def by_ids(self, ids: Collection[str]) -> dict[str, Workload]:
        if not ids:
            return {}
        query = (
            select(Workload).where(Workload.id.in_(list(ids))).options(selectinload(Workload.replica_rows))
        )
        return {w.id: w for w in (await self.session.scalars(query)).all()}

    def add(self, workload: Workload) -> None:
        self.session.add(workload)

    async def insert_many(self, workloads: Sequence[Workload]) -> None:
        """New workloads in one bulk statement rather than through the unit of work (a group of
        submissions): the instances stay transient, so read nothing back from them but what they were
        built with."""
        columns = [column.key for column in Workload.__table__.columns]
        rows = [{key: value for key in columns if (value := getattr(w, key)) is not None} for w in workloads]
        await self.session.execute(insert(Workload), rows)

    async def page(
        self,
        workspace_ids: Collection[str] | None,
        statuses: Collection[WorkloadStatus] | None,
        limit: int,
        cursor: int | None,
        kinds: Collection[WorkloadKind] | None = None,
        creator_id: str | None = None,
    ) -> WorkloadPage:
        """Newest first, keyset-paginated on `seq` so pages stay fast and stable under inserts."""
        filters: list[ColumnElement[bool]] = []
        if workspace_ids is not None:
            filters.append(Workload.workspace_id.in_(list(workspace_ids)))
        if statuses:
            filters.append(Workload.status.in_([s.value for s in statuses]))
        if kinds:
            filters.append(Workload.kind.in_([k.value for k in kinds]))
        if creator_id is not None:
            filters.append(Workload.created_by == creator_id)
        total = await self.session.scalar(select(func.count()).select_from(Workload).where(*filters))
        query = select(Workload).where(*filters)
        if (older := older_than(Workload.seq, cursor)) is not None:
            query = query.where(older)
        query = query.order_by(Workload.seq.desc()).limit(limit + 1)
        rows = (await self.session.scalars(query)).all()
        next_cursor = rows[limit - 1].seq if len(rows) > limit else None
        return WorkloadPage(items=rows[:limit], total=int(total or 0), next_cursor=next_cursor)

    async def with_statuses(self, statuses: Collection[WorkloadStatus]) -> Sequence[Workload]:
        query = (
            select(Workload)
            .where(Workload.status.in_([s.value for s in statuses]))
            .options(selectinload(Workload.replica_rows))
            .order_by(Workload.seq)
        )
        return (await self.session.scalars(query)).all()

    async def code_bundles_of_unfinished(self) -> set[str]:
        """The code bundles that workloads not yet ended still refer to (they may still be launched)."""
        ended = [s.value for s in (WorkloadStatus.SUCCEEDED, WorkloadStatus.FAILED, WorkloadStatus.CANCELLED)]
        specs = await self.session.scalars(select(Workload.spec).where(Workload.status.not_in(ended)))
        return {str(spec["code"]) for spec in specs if spec.get("code")}

    async def count_by_status_and_workspace(self) -> Sequence[tuple[str, str, int]]:
        query = select(Workload.status, Workload.workspace_id, func.count()).group_by(
            Workload.status, Workload.workspace_id
        )
        return [(row[0], row[1], int(row[2])) for row in (await self.session.execute(query)).all()]

    async def all_ids(self) -> set[str]:
        return set((await self.session.scalars(select(Workload.id))).all())

    async def max_admitted_seq(self) -> int:
        return int(await self.session.scalar(select(func.max(Workload.admitted_seq))) or 0)

    async def allocations(self, statuses: Collection[WorkloadStatus]) -> list[Allocation]:
        """The replicas of workloads in `statuses`, as plain columns."""
        query = (
            select(
                Replica.node, Replica.cpu_milli, Replica.memory_mib, Replica.gpu_indices, Replica.gpu_milli
            )
            .join(Workload, Workload.id == Replica.workload_id)
            .where(Workload.status.in_([s.value for s in statuses]))
        )
        return [Allocation(*row) for row in await self.session.execute(query)]

    async def gpu_shares(
        self, statuses: Collection[WorkloadStatus]
    ) -> list[tuple[str, str, str, str, int, int]]:
        """(workload id, name, workspace id, node, GPU index, milli-GPUs held of it) for every GPU a workload
        in `statuses` holds, as columns: the platform's per-workload metrics read this at every scrape."""
        query = (
            select(
                Workload.id,
                Workload.name,
                Workload.workspace_id,
                Replica.node,
                Replica.gpu_indices,
                Replica.gpu_milli,
            )
            .join(Workload, Workload.id == Replica.workload_id)
            .where(Workload.status.in_([s.value for s in statuses]), Replica.gpu_milli > 0)
        )
        held: dict[tuple[str, str, str, str, int], int] = {}
        for workload_id, name, workspace_id, node, indices, milli in await self.session.execute(query):
            for index in indices or []:
                key = (workload_id, name, workspace_id, node, int(index))
                held[key] = held.get(key, 0) + milli
        return [(*key, milli) for key, milli in sorted(held.items())]

    async def live_rows(self, statuses: Collection[WorkloadStatus]) -> dict[str, LiveRow]:
        """Workloads in `statuses` with their replicas, read as columns: two queries, however many."""
        wanted = [s.value for s in statuses]
        workloads = await self.session.execute(
            select(
                Workload.id, Workload.status, Workload.launched, Workload.stop_requested, Workload.stop_reason
            ).where(Workload.status.in_(wanted))
        )
        rows = {row[0]: LiveRow(*row, replicas=[]) for row in workloads}
        replicas = await self.session.execute(
            select(
                Replica.workload_id,
                Replica.index,
                Replica.state,
                Replica.exit_code,
                Replica.reason,
                Replica.started_at,
                Replica.finished_at,
            )
            .join(Workload, Workload.id == Replica.workload_id)
            .where(Workload.status.in_(wanted))
            .order_by(Replica.workload_id, Replica.index)
        )
        for workload_id, index, state, exit_code, reason, started_at, finished_at in replicas:
            if workload_id in rows:
                replica = ReplicaRow(index, state, exit_code, reason, started_at, finished_at)
                rows[workload_id].replicas.append(replica)
        return rows

    async def stop_requested(self, statuses: Collection[WorkloadStatus]) -> Sequence[Workload]:
        """Workloads in `statuses` that were asked to stop (usually none or a few)."""
        query = (
            select(Workload)
            .where(Workload.status.in_([s.value for s in statuses]), Workload.stop_requested.is_not(None))
            .order_by(Workload.seq)
        )
        return (await self.session.scalars(query)).all()

    async def launchable(self) -> Sequence[Workload]:
        """Admitted workloads the backend has not been asked to start, and not asked to stop."""
        query = (
            select(Workload)
            .where(
                Workload.status == WorkloadStatus.ADMITTED.value,
                Workload.launched.is_(False),
                Workload.stop_requested.is_(None),
            )
            .order_by(Workload.admitted_seq)
        )
        return (await self.session.scalars(query)).all()
