"""`astrago usage`: the usage ledger's report (GPU-hours allocated and used, CPU-core-hours, memory)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from astrago.cli.errors import CliError
from astrago.cli.http import ApiClient
from astrago.cli.output import Column, OutputFormat, print_data, print_table
from astrago.client.client import UsageParams
from astrago.domain.usage import UsageGroupBy
from astrago.services.usage_schemas import UsageReport, UsageRow


def _hours(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def _used(row: UsageRow) -> str:
    """Used GPU-hours with their share of the measured part; `unknown` where nothing was measured."""
    if row.gpu_hours_used is None:
        return "unknown" if row.gpu_hours else "-"
    share = row.gpu_hours_used / row.gpu_hours_measured if row.gpu_hours_measured else 0.0
    partly = " of measured" if row.gpu_hours_measured < row.gpu_hours else ""
    return f"{row.gpu_hours_used:,.2f} ({share:.0%}{partly})"


def _print_report(report: UsageReport) -> None:
    columns = [
        Column(report.by.value.upper()),
        Column("GPU-HOURS"),
        Column("GPU-HOURS USED"),
        Column("CPU-CORE-HOURS"),
        Column("MEMORY GIB-HOURS"),
        Column("RUNS"),
    ]
    rows = [
        [
            r.key,
            _hours(r.gpu_hours),
            _used(r),
            _hours(r.cpu_core_hours),
            _hours(r.memory_gib_hours),
            str(r.allocations),
        ]
        for r in [*report.rows, report.total]
    ]
    print_table(columns, rows)
    zone = "" if report.time_zone == "UTC" else f" (days in {report.time_zone})"
    sys.stderr.write(
        f"from {report.from_.isoformat(timespec='seconds')} to {report.to.isoformat(timespec='seconds')}"
        f"{zone}; running work counts up to now\n"
    )


def usage(
    workspace: Annotated[
        str | None, typer.Option("--workspace", "-w", help="one workspace (default: all you may see)")
    ] = None,
    start: Annotated[
        str | None,
        typer.Option(
            "--from", help="a day (2026-12-01, from its midnight) or an ISO time; default: 30 days ago"
        ),
    ] = None,
    end: Annotated[
        str | None, typer.Option("--to", help="a day (included whole) or an ISO time; default: now")
    ] = None,
    by: Annotated[
        UsageGroupBy, typer.Option("--by", help="rows per workspace, user, GPU model or day")
    ] = UsageGroupBy.WORKSPACE,
    time_zone: Annotated[
        str | None,
        typer.Option("--tz", help="IANA zone whose midnights split the days (default: the server's)"),
    ] = None,
    csv: Annotated[bool, typer.Option("--csv", help="CSV for spreadsheets")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="the report as JSON, for scripts")] = False,
) -> None:
    """GPU-hours allocated and used (utilisation-weighted), CPU-core-hours and memory GiB-hours."""
    if csv and json_output:
        raise CliError("--csv and --json contradict each other; choose one", exit_code=2)
    query = UsageParams(workspace, start, end, by.value, time_zone)
    client = ApiClient.from_config()
    if csv:
        sys.stdout.write(client.usage_csv(query))
        return
    report = client.usage(query)
    if json_output:
        print_data(report.model_dump(mode="json", by_alias=True), OutputFormat.JSON)
        return
    _print_report(report)


def register(app: typer.Typer) -> None:
    app.command()(usage)
