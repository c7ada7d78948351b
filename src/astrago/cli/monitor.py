"""`astrago top`: live workloads by GPU use, refreshed like top(1); and GPU use in `describe`."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from astrago.cli.http import ApiClient
from astrago.cli.output import Column, JsonOpt, OutputFormat, OutputOpt, chosen_format, emit, print_table
from astrago.cli.render import console
from astrago.monitor.schemas import TopListing, TopRow, WorkloadGpuUsage
from astrago.services.schemas import WorkloadOut

COLUMNS = (
    Column("WORKLOAD"),
    Column("NAME"),
    Column("WORKSPACE"),
    Column("STATUS"),
    Column("GPUS"),
    Column("GPU%"),
    Column("GPU MEMORY"),
    Column("SOURCE", wide_only=True),
    Column("SAMPLED", wide_only=True),
    Column("NOTE", free_text=True),
)


def bytes_text(value: int | None) -> str:
    if value is None:
        return "-"
    for unit, size in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if value >= size:
            return f"{value / size:.1f} {unit}"
    return f"{value} B"


def percent_text(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}%"


def _row(row: TopRow) -> list[str]:
    sampled = row.at.astimezone().strftime("%H:%M:%S") if row.at else "-"
    return [
        row.workload_id,
        row.name,
        row.workspace,
        row.status,
        str(row.gpus),
        percent_text(row.gpu_util_percent),
        bytes_text(row.memory_used_bytes),
        row.source.value if row.source else "-",
        sampled,
        row.reason or "",
    ]


def _live_table(listing: TopListing) -> Table:
    table = Table(
        title=f"astrago top — {listing.at.astimezone():%H:%M:%S}, samples every {listing.interval_s:g} s "
        "(Ctrl-C to quit)",
        title_justify="left",
        box=None,
        header_style="bold",
    )
    for column in COLUMNS:
        if not column.wide_only:
            table.add_column(column.title, overflow="fold" if column.free_text else "ellipsis")
    for row in listing.rows:
        cells = _row(row)
        table.add_row(*[cell for cell, column in zip(cells, COLUMNS, strict=True) if not column.wide_only])
    if not listing.rows:
        table.add_row("(no live workloads)", *[""] * (len(table.columns) - 1))
    return table


def top(
    once: Annotated[
        bool, typer.Option("--once", help="print one listing and exit (what a pipe gets)")
    ] = False,
    interval: Annotated[float, typer.Option(min=1.0, help="seconds between refreshes")] = 5.0,
    output: OutputOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """Live workloads by GPU use: utilisation (mean over their GPUs) and GPU memory, refreshed."""
    client = ApiClient.from_config()
    fmt = chosen_format(output, json_output)
    if once or fmt not in (OutputFormat.TABLE, OutputFormat.WIDE) or not console.is_terminal:
        listing = client.top()
        emit(
            listing,
            fmt,
            kind="workload",
            names=lambda: [row.workload_id for row in listing.rows],
            table=lambda f: print_table(COLUMNS, [_row(row) for row in listing.rows], f),
        )
        return
    with Live(_live_table(client.top()), console=Console(), auto_refresh=False, screen=False) as live:
        try:
            while True:
                time.sleep(interval)
                live.update(_live_table(client.top()), refresh=True)
        except KeyboardInterrupt:
            return


def gpu_use_of(client: ApiClient, workload: WorkloadOut) -> WorkloadGpuUsage | None:
    """The workload's GPU use over its run so far (None before it started)."""
    started = workload.started_at
    if started is None:
        return None
    until = workload.finished_at or datetime.now(UTC)
    span = max(1, int((until - started).total_seconds()) + 1)
    # describe prints the summary only: one point per series (a day per point past a day) keeps it small
    step_s = min(86400, max(10, span))
    return client.gpu_usage(workload.id, since=started, until=until + timedelta(seconds=1), step_s=step_s)


def print_gpu_use(usage: WorkloadGpuUsage | None) -> None:
    if usage is None:
        console.print("  GPU use:   - (not started)")
        return
    summary = usage.summary
    if not summary.attributable:
        memory = ""
        if summary.memory_peak_bytes is not None:
            mean, peak = bytes_text(summary.memory_mean_bytes), bytes_text(summary.memory_peak_bytes)
            memory = f"; memory mean {mean}, peak {peak} per GPU"
        console.print(f"  GPU use:   unknown — {usage.reason}{memory}")
        return
    sources = ", ".join(source.value for source in summary.sources)
    console.print(
        f"  GPU use:   mean {percent_text(summary.gpu_util_mean_percent)}, peak "
        f"{percent_text(summary.gpu_util_peak_percent)} per GPU; memory mean "
        f"{bytes_text(summary.memory_mean_bytes)}, peak {bytes_text(summary.memory_peak_bytes)} per GPU "
        f"({summary.gpu_seconds_used / 3600:.2f} GPU-hours used of {summary.gpu_seconds_sampled / 3600:.2f} "
        f"sampled; source: {sources})"
    )


def register(app: typer.Typer) -> None:
    app.command()(top)
