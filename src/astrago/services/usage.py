"""The usage ledger's reports: GPU-hours allocated and used, CPU-core-hours and memory, per workspace,
user, GPU model or day, over a window, from the allocation intervals the workload controller records.

Members see the workspaces they belong to, admins every workspace. Utilisation comes from a
`UtilisationSource` (the telemetry service); where it is unknown, used GPU-hours stay unknown."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from typing import Protocol

from astrago.auth.principal import Principal
from astrago.domain.enums import WorkspaceRole
from astrago.domain.usage import (
    Allocation,
    Piece,
    UsageGroupBy,
    UsageTotals,
    UsageWindowError,
    Window,
    pieces,
    summarise,
    time_zone,
    usage_window,
)
from astrago.services.context import ServiceContext
from astrago.services.errors import InvalidInput
from astrago.services.usage_schemas import UsageReport, UsageRow
from astrago.services.workspaces import resolve_workspace
from astrago.store.repositories import AllocationRepository

UtilisationKey = tuple[str, datetime, datetime]  # workload id, piece start, piece end


class UtilisationSource(Protocol):
    async def mean_utilisation(self, workload_id: str, since: datetime, until: datetime) -> float | None:
        """Mean GPU utilisation (0..1) of a workload's GPUs over [since, until); None when not known."""


@dataclass(frozen=True, slots=True)
class UsageQuery:
    workspace: str | None = None
    start: date | datetime | None = None
    end: date | datetime | None = None
    by: UsageGroupBy = UsageGroupBy.WORKSPACE
    time_zone: str | None = None  # None: the server's setting


def _row(key: str, totals: UsageTotals) -> UsageRow:
    return UsageRow(
        key=key,
        gpu_hours=totals.gpu_hours,
        gpu_hours_used=totals.gpu_hours_used,
        gpu_hours_measured=totals.gpu_hours_measured,
        cpu_core_hours=totals.cpu_core_hours,
        memory_gib_hours=totals.memory_gib_hours,
        allocations=len(totals.allocations),
    )


class UsageService:
    def __init__(self, ctx: ServiceContext, utilisation: UtilisationSource | None = None) -> None:
        self.ctx = ctx
        self.utilisation = utilisation

    async def report(
        self, principal: Principal, query: UsageQuery, now: datetime | None = None
    ) -> UsageReport:
        zone_name = query.time_zone or self.ctx.settings.usage_time_zone
        now = now or datetime.now(UTC)
        try:
            zone = time_zone(zone_name)
            window = usage_window(query.start, query.end, zone, now)
        except UsageWindowError as exc:
            raise InvalidInput(str(exc)) from exc
        async with self.ctx.read() as session:
            workspace_ids: list[str] | None = None if principal.is_admin else list(principal.roles)
            if query.workspace is not None:
                workspace = await resolve_workspace(session, principal, query.workspace, WorkspaceRole.VIEWER)
                workspace_ids = [workspace.id]
            allocations = await AllocationRepository(session).overlapping(window, workspace_ids)
        measured = await self._utilisation(allocations, window, now, zone)
        summary = summarise(
            allocations,
            window,
            now,
            zone,
            query.by,
            (lambda p: measured.get((p.allocation.workload_id, p.start, p.end))) if measured else None,
        )
        return UsageReport(
            by=query.by,
            workspace=query.workspace,
            from_=window.start,
            to=window.end,
            time_zone=zone_name,
            generated_at=now,
            rows=[_row(key, totals) for key, totals in summary.rows],
            total=_row("total", summary.total),
        )

    async def _utilisation(
        self, allocations: Iterable[Allocation], window: Window, now: datetime, zone: tzinfo
    ) -> dict[UtilisationKey, float | None]:
        """The mean utilisation of each GPU piece, asked once per workload and piece."""
        if self.utilisation is None:
            return {}
        wanted: set[UtilisationKey] = set()
        for allocation in allocations:
            if allocation.gpu_milli:
                wanted.update(_keys(pieces(allocation, window, now, zone)))
        return {key: await self.utilisation.mean_utilisation(*key) for key in sorted(wanted)}


def _keys(split: Iterable[Piece]) -> Iterable[UtilisationKey]:
    return ((p.allocation.workload_id, p.start, p.end) for p in split)


CSV_COLUMNS = (
    "gpu_hours",
    "gpu_hours_used",
    "gpu_hours_measured",
    "cpu_core_hours",
    "memory_gib_hours",
    "allocations",
)


def usage_csv(report: UsageReport) -> str:
    """The report's rows as CSV (a header, one line per group; unknown used GPU-hours are empty)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([report.by.value, *CSV_COLUMNS])
    for row in report.rows:
        writer.writerow([row.key, *("" if (v := getattr(row, c)) is None else v for c in CSV_COLUMNS)])
    return out.getvalue()
