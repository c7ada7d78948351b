"""The usage ledger's reports: GPU-hours allocated and used, CPU-core-hours and memory, per workspace,
user, GPU model or day, over a window, from the allocation intervals the workload controller records.

Members see the workspaces they belong to, admins every workspace. Utilisation comes from the GPU
telemetry's samples of each replica (astrago.monitor), added up per interval and UTC hour as they are
written; where none is known (simulated GPUs without a source, MIG slices, days the telemetry did not
run), used GPU-hours stay unknown, never 0."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime

from astrago.auth.principal import Principal
from astrago.domain.enums import WorkspaceRole
from astrago.domain.usage import (
    DailyUtilisation,
    HourOffsets,
    UsageGroupBy,
    UsageTotals,
    UsageWindowError,
    summarise,
    time_zone,
    usage_window,
)
from astrago.services.context import ServiceContext
from astrago.services.errors import InvalidInput
from astrago.services.usage_schemas import UsageReport, UsageRow
from astrago.services.workspaces import resolve_workspace
from astrago.store.repositories import AllocationRepository
from astrago.store.repositories.usage_hours import UsageHourRepository


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
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

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
            measured = await UsageHourRepository(session).daily(
                window, now, HourOffsets.of(window, zone), workspace_ids
            )
        utilisation = DailyUtilisation(measured)
        summary = summarise(allocations, window, now, zone, query.by, utilisation)
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
