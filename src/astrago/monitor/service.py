"""The read side of telemetry: a workload's utilisation, its series, a node's GPUs, the live listing.

`utilisation` and `gpu_states` take no principal: other parts of the platform (usage ledger, alerts, idle
reclaim, health) call them on the server's behalf. The other calls authorize like the workload and node
reads they sit beside."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from astrago.auth.principal import Principal
from astrago.domain.enums import WorkspaceRole
from astrago.domain.status import LIVE_STATUSES
from astrago.monitor.reasons import unknown_reason
from astrago.monitor.schemas import (
    MIG_NOT_ATTRIBUTABLE,
    DeviceGpuSeries,
    GpuState,
    GpuUsagePoint,
    NodeGpuUsage,
    ReplicaGpuSeries,
    SampleSource,
    TopListing,
    TopRow,
    WorkloadGpuUsage,
    WorkloadUtilisation,
)
from astrago.monitor.sources import configured_source_kind
from astrago.services.context import ServiceContext
from astrago.services.errors import InvalidInput, NotFound
from astrago.store.models import GpuDeviceSample, Node, Workload, WorkloadGpuSample
from astrago.store.repositories import NodeRepository, WorkloadRepository
from astrago.store.repositories.gpu_samples import GpuSampleRepository

MAX_POINTS = 2000  # per series; a longer range needs a larger step
DEFAULT_RANGE = timedelta(hours=1)
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)  # no GPU sample is older; bounds keep date arithmetic safe
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


class TelemetryService:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    # -- for other parts of the platform ----------------------------------------------------------------

    async def utilisation(
        self, workload_id: str, since: datetime, until: datetime
    ) -> WorkloadUtilisation | None:
        """Mean and peak GPU use of a workload over [since, until); None when it has no sample there."""
        async with self.ctx.read() as session:
            totals = await GpuSampleRepository(session).workload_totals(workload_id, since, until)
        if totals.samples == 0:
            return None
        attributable = totals.util_sampled_s > 0
        return WorkloadUtilisation(
            workload_id=workload_id,
            since=since,
            until=until,
            samples=totals.samples,
            attributable=attributable,
            gpu_util_mean_percent=totals.util_seconds / totals.util_sampled_s if attributable else None,
            gpu_util_peak_percent=totals.util_peak,
            memory_mean_bytes=(
                round(totals.memory_byte_seconds / totals.memory_sampled_s)
                if totals.memory_sampled_s
                else None
            ),
            memory_peak_bytes=totals.memory_peak,
            gpu_seconds_sampled=float(totals.util_sampled_s),
            gpu_seconds_used=totals.util_seconds / 100.0,
            sources=[SampleSource(source) for source in totals.sources],
            reason=None if attributable else MIG_NOT_ATTRIBUTABLE,
        )

    async def gpu_states(self, node: str) -> list[GpuState]:
        """The latest reading of each GPU of `node` (every GPU the node has, read or not)."""
        async with self.ctx.read() as session:
            known = await NodeRepository(session).get(node)
            latest = await GpuSampleRepository(session).latest_device_rows(node)
        return self._states(node, known, latest)

    # -- API reads --------------------------------------------------------------------------------------

    async def workload_usage(
        self,
        principal: Principal,
        workload_id: str,
        since: datetime | None,
        until: datetime | None,
        step_s: int | None,
    ) -> WorkloadGpuUsage:
        async with self.ctx.read() as session:
            workload = await WorkloadRepository(session).get(workload_id)
            if workload is None or not principal.can(workload.workspace_id, WorkspaceRole.VIEWER):
                raise NotFound(f"workload {workload_id!r} does not exist or is not in one of your workspaces")
            window = _window(
                since,
                until,
                step_s,
                default_since=workload.started_at or workload.created_at,
                # a finished workload's charts show its run, not the empty hours since
                default_until=workload.finished_at + timedelta(seconds=1) if workload.finished_at else None,
            )
            rows = await GpuSampleRepository(session).workload_rows(workload_id, window.since, window.until)
            simulated = await self._simulated_nodes(session, workload)
        summary = await self.utilisation(workload_id, window.since, window.until)
        summary = summary or _empty_summary(workload_id, window)
        reason = summary.reason
        if summary.samples == 0:
            reason = unknown_reason(
                holds_gpus=_holds_gpus(workload),
                on_simulated_gpus=simulated,
                source=configured_source_kind(self.ctx.settings),
                samples=0,
                attributable_samples=0,
            )
        summary = summary.model_copy(update={"reason": reason})
        return WorkloadGpuUsage(
            workload_id=workload_id,
            since=window.since,
            until=window.until,
            step_s=window.step_s,
            attributable=summary.attributable,
            sources=summary.sources,
            reason=reason,
            summary=summary,
            series=_replica_series(rows, window),
        )

    async def node_usage(
        self,
        principal: Principal,
        node: str,
        since: datetime | None,
        until: datetime | None,
        step_s: int | None,
    ) -> NodeGpuUsage:
        del principal  # any signed-in user may read nodes (no workload is named here)
        window = _window(since, until, step_s, default_since=None)
        async with self.ctx.read() as session:
            known = await NodeRepository(session).get(node)
            if known is None:
                raise NotFound(f"node {node!r} does not exist")
            repository = GpuSampleRepository(session)
            rows = await repository.device_rows(node, window.since, window.until)
            latest = await repository.latest_device_rows(node)
        by_gpu: dict[int, list[GpuDeviceSample]] = defaultdict(list)
        for row in rows:
            by_gpu[row.gpu_index].append(row)
        return NodeGpuUsage(
            node=node,
            since=window.since,
            until=window.until,
            step_s=window.step_s,
            gpus=self._states(node, known, latest),
            series=[
                DeviceGpuSeries(gpu_index=index, points=_bucketed(by_gpu[index], window))
                for index in sorted(by_gpu)
            ],
        )

    async def top(self, principal: Principal) -> TopListing:
        """Live workloads the caller may see, busiest first, from the latest sample period."""
        now = datetime.now(UTC)
        interval = self.ctx.settings.telemetry_interval_s
        async with self.ctx.read() as session:
            live = await WorkloadRepository(session).with_statuses(LIVE_STATUSES)
            visible = [w for w in live if principal.can(w.workspace_id, WorkspaceRole.VIEWER)]
            recent = await GpuSampleRepository(session).recent_workload_rows(
                now - timedelta(seconds=3 * interval)
            )
            simulated_nodes = {n.name for n in await NodeRepository(session).list() if n.simulated}
        latest = _latest_per_gpu(recent)
        source = configured_source_kind(self.ctx.settings)
        rows = [_top_row(w, latest.get(w.id, []), simulated_nodes, source) for w in visible]
        rows.sort(key=lambda r: (r.gpu_util_percent is None, -(r.gpu_util_percent or 0), -r.gpus, r.name))
        return TopListing(at=now, interval_s=interval, rows=rows)

    # -- helpers ----------------------------------------------------------------------------------------

    def _states(self, node: str, known: Node | None, latest: Sequence[GpuDeviceSample]) -> list[GpuState]:
        by_index = {row.gpu_index: row for row in latest}
        indices = sorted({d.index for d in known.devices} | by_index.keys() if known else by_index.keys())
        simulated = bool(known and known.simulated)
        source = configured_source_kind(self.ctx.settings)
        states = []
        for index in indices:
            row = by_index.get(index)
            if row is None:
                states.append(
                    GpuState(
                        node=node,
                        gpu_index=index,
                        at=None,
                        source=None,
                        gpu_util_percent=None,
                        memory_used_bytes=None,
                        memory_total_bytes=None,
                        temperature_celsius=None,
                        power_watts=None,
                        healthy=None,
                        mig_enabled=False,
                        reason=(
                            f"no reading of this GPU from the {source} source"
                            if source is not None
                            else unknown_reason(
                                holds_gpus=True,
                                on_simulated_gpus=simulated,
                                source=None,
                                samples=0,
                                attributable_samples=0,
                            )
                        ),
                    )
                )
                continue
            states.append(
                GpuState(
                    node=node,
                    gpu_index=index,
                    at=row.at,
                    source=SampleSource(row.source),
                    gpu_util_percent=row.gpu_util_percent,
                    memory_used_bytes=row.memory_used_bytes,
                    memory_total_bytes=row.memory_total_bytes,
                    temperature_celsius=row.temperature_celsius,
                    power_watts=row.power_watts,
                    healthy=row.healthy,
                    mig_enabled=row.mig_enabled,
                )
            )
        return states

    @staticmethod
    async def _simulated_nodes(session: AsyncSession, workload: Workload) -> bool:
        nodes = {replica.node for replica in workload.replica_rows}
        repository = NodeRepository(session)
        for name in nodes:
            node = await repository.get(name)
            if node is not None and node.simulated:
                return True
        return False


@dataclass(frozen=True, slots=True)
class _Window:
    since: datetime
    until: datetime
    step_s: int


def _window(
    since: datetime | None,
    until: datetime | None,
    step_s: int | None,
    default_since: datetime | None,
    default_until: datetime | None = None,
) -> _Window:
    for name, given in (("since", since), ("until", until)):
        if given is not None and given.tzinfo is None:
            raise InvalidInput(f"{name} needs a time zone (e.g. 2026-12-02T01:00:00Z)")
        if given is not None and not EARLIEST <= given <= LATEST:
            raise InvalidInput(f"{name} must lie between {EARLIEST:%Y} and {LATEST:%Y}")
    end = until or (default_until if since is None else None) or datetime.now(UTC)
    start = since or max(default_since or end - DEFAULT_RANGE, end - timedelta(days=1))
    if start >= end:
        raise InvalidInput("since must be before until")
    span = (end - start).total_seconds()
    if step_s is None:
        step_s = max(10, -(-int(span) // 500))  # about 500 points
    if span / step_s > MAX_POINTS:
        raise InvalidInput(
            f"{int(span)} s in steps of {step_s} s is more than {MAX_POINTS} points; give a larger step "
            f"(at least {-(-int(span) // MAX_POINTS)} s) or a shorter range"
        )
    return _Window(start, end, step_s)


@dataclass(slots=True)
class _Bucket:
    util_weighted: float = 0.0
    util_seconds: int = 0
    util_peak: float | None = None
    memory_weighted: float = 0.0
    memory_seconds: int = 0
    memory_peak: int | None = None

    def add(self, row: WorkloadGpuSample | GpuDeviceSample) -> None:
        if row.gpu_util_percent is not None:
            self.util_weighted += row.gpu_util_percent * row.sampled_s
            self.util_seconds += row.sampled_s
            peak = (
                row.gpu_util_peak_percent if row.gpu_util_peak_percent is not None else row.gpu_util_percent
            )
            self.util_peak = peak if self.util_peak is None else max(self.util_peak, peak)
        if row.memory_used_bytes is not None:
            self.memory_weighted += row.memory_used_bytes * row.sampled_s
            self.memory_seconds += row.sampled_s
            mem_peak = row.memory_peak_bytes if row.memory_peak_bytes is not None else row.memory_used_bytes
            self.memory_peak = mem_peak if self.memory_peak is None else max(self.memory_peak, mem_peak)

    def point(self, at: datetime) -> GpuUsagePoint:
        return GpuUsagePoint(
            at=at,
            gpu_util_percent=self.util_weighted / self.util_seconds if self.util_seconds else None,
            gpu_util_peak_percent=self.util_peak,
            memory_used_bytes=round(self.memory_weighted / self.memory_seconds)
            if self.memory_seconds
            else None,
            memory_peak_bytes=self.memory_peak,
        )


def _bucketed(rows: Sequence[WorkloadGpuSample | GpuDeviceSample], window: _Window) -> list[GpuUsagePoint]:
    """Points `step_s` apart from the window's start; a bucket without rows has no point (a gap)."""
    buckets: dict[int, _Bucket] = defaultdict(_Bucket)
    for row in rows:
        buckets[int((row.at - window.since).total_seconds()) // window.step_s].add(row)
    return [
        buckets[slot].point(window.since + timedelta(seconds=slot * window.step_s))
        for slot in sorted(buckets)
    ]


def _replica_series(rows: Sequence[WorkloadGpuSample], window: _Window) -> list[ReplicaGpuSeries]:
    grouped: dict[tuple[int, str, int], list[WorkloadGpuSample]] = defaultdict(list)
    for row in rows:
        grouped[(row.replica_index, row.node, row.gpu_index)].append(row)
    return [
        ReplicaGpuSeries(replica_index=replica, node=node, gpu_index=gpu, points=_bucketed(group, window))
        for (replica, node, gpu), group in sorted(grouped.items())
    ]


def _empty_summary(workload_id: str, window: _Window) -> WorkloadUtilisation:
    return WorkloadUtilisation(
        workload_id=workload_id,
        since=window.since,
        until=window.until,
        samples=0,
        attributable=False,
        gpu_util_mean_percent=None,
        gpu_util_peak_percent=None,
        memory_mean_bytes=None,
        memory_peak_bytes=None,
        gpu_seconds_sampled=0.0,
        gpu_seconds_used=0.0,
        sources=[],
    )


def _holds_gpus(workload: Workload) -> bool:
    return any(replica.gpu_indices or replica.gpu_milli for replica in workload.replica_rows) or bool(
        (workload.spec.get("resources") or {}).get("gpus")
    )


def _latest_per_gpu(rows: Sequence[WorkloadGpuSample]) -> dict[str, list[WorkloadGpuSample]]:
    """Per workload, the newest raw row of each (replica, GPU)."""
    newest: dict[tuple[str, int, str, int], WorkloadGpuSample] = {}
    for row in rows:  # in time order: later rows replace earlier ones
        newest[(row.workload_id, row.replica_index, row.node, row.gpu_index)] = row
    by_workload: dict[str, list[WorkloadGpuSample]] = defaultdict(list)
    for (workload_id, *_), row in newest.items():
        by_workload[workload_id].append(row)
    return by_workload


def _top_row(
    workload: Workload, rows: list[WorkloadGpuSample], simulated_nodes: set[str], source: str | None
) -> TopRow:
    gpus = sum(len(replica.gpu_indices) for replica in workload.replica_rows)
    utils = [row.gpu_util_percent for row in rows if row.gpu_util_percent is not None]
    memories = [row.memory_used_bytes for row in rows if row.memory_used_bytes is not None]
    reason = None
    if not utils:
        reason = unknown_reason(
            holds_gpus=_holds_gpus(workload),
            on_simulated_gpus=any(replica.node in simulated_nodes for replica in workload.replica_rows),
            source=source,
            samples=len(rows),
            attributable_samples=0,
        )
    return TopRow(
        workload_id=workload.id,
        name=workload.name,
        workspace=workload.workspace.name,
        kind=workload.kind,
        status=workload.status,
        gpus=gpus,
        sampled_gpus=len(rows),
        gpu_util_percent=sum(utils) / len(utils) if utils else None,
        memory_used_bytes=sum(memories) if memories else None,
        at=max((row.at for row in rows), default=None),
        source=SampleSource(rows[-1].source) if rows else None,
        reason=reason,
    )
