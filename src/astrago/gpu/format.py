"""`astrago gpu ls`: GPUs, MIG devices and their processes with pods, as a Rich table or JSON."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from rich.console import Group
from rich.table import Table

from astrago.gpu.collector import AttributedProcess, Snapshot
from astrago.gpu.model import MIB, GpuDevice, MigDevice


def snapshot_json(snapshot: Snapshot) -> dict[str, Any]:
    return {
        "source": snapshot.source,
        "collected_at": snapshot.collected_at,
        "devices": [{**asdict(device), "model": device.model} for device in snapshot.devices],
        "processes": [_process_json(row) for row in snapshot.processes],
        "errors": [asdict(error) for error in snapshot.errors],
    }


def _process_json(row: AttributedProcess) -> dict[str, Any]:
    proc = row.process
    return {
        "pid": proc.pid,
        "gpu": proc.gpu_index,
        "gpu_uuid": row.device.uuid,
        "mig_uuid": row.mig.uuid if row.mig else None,
        "mig_profile": row.mig.profile if row.mig else None,
        "gpu_instance_id": proc.gpu_instance_id,
        "compute_instance_id": proc.compute_instance_id,
        "type": proc.kind.value,
        "used_memory_bytes": proc.used_memory_bytes,
        "sm_utilization_percent": proc.sm_utilization_percent,
        "memory_utilization_percent": proc.memory_utilization_percent,
        "command": row.command,
        "namespace": row.namespace or None,
        "pod": row.pod or None,
        "pod_uid": row.pod_uid or None,
        "container": row.container or None,
        "container_id": row.container_id or None,
    }


def snapshot_tables(snapshot: Snapshot) -> Group:
    return Group(_device_table(snapshot), _process_table(snapshot))


def _mib(used: int | None, total: int | None) -> str:
    if total is None:
        return "-"
    return f"{'?' if used is None else f'{used / 1024:.1f}'}/{total / 1024:.1f} GiB"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}%"


def _sessions(snapshot: Snapshot, device: GpuDevice, mig: MigDevice | None) -> str:
    pids = {
        row.process.pid
        for row in snapshot.processes
        if row.device.index == device.index and (mig is None or row.mig == mig)
    }
    return str(len(pids))


def _device_table(snapshot: Snapshot) -> Table:
    table = Table(title=f"GPUs ({snapshot.source})", title_justify="left")
    for column in ("GPU", "Device", "UUID", "Memory", "Util", "Mem BW", "Temp", "Power", "Procs"):
        table.add_column(column, justify="right" if column in ("GPU", "Util", "Mem BW", "Procs") else "left")
    for device in snapshot.devices:
        name = device.model if device.healthy else f"[red]{device.model} (unhealthy)[/]"
        table.add_row(
            str(device.index),
            name + (" [dim]MIG[/]" if device.mig_enabled else ""),
            device.uuid or "-",
            _mib(device.memory_used_mib, device.memory_total_mib),
            _pct(device.utilization_percent),
            _pct(device.memory_utilization_percent),
            "-" if device.temperature_celsius is None else f"{device.temperature_celsius:.0f} C",
            "-" if device.power_watts is None else f"{device.power_watts:.0f} W",
            _sessions(snapshot, device, None),
        )
        for mig in device.mig_devices:
            table.add_row(
                "",
                f"└ {mig.profile or 'MIG'} (GI {mig.gpu_instance_id}, CI {mig.compute_instance_id})",
                mig.uuid or "-",
                _mib(mig.memory_used_mib, mig.memory_total_mib),
                "",
                "",
                "",
                "",
                _sessions(snapshot, device, mig),
            )
    return table


def _mig_cell(row: AttributedProcess) -> str:
    """`3g.40gb 2/0` (profile, GPU instance / compute instance); without a known profile, the IDs alone."""
    proc = row.process
    if proc.mig_key is None:
        return "-"
    ids = f"{proc.gpu_instance_id}/{proc.compute_instance_id}"
    profile = row.mig.profile if row.mig is not None else None
    return f"{profile} {ids}" if profile else f"GI/CI {ids}"


def _process_table(snapshot: Snapshot) -> Table:
    table = Table(title="Processes", title_justify="left")
    for column in ("GPU", "MIG", "PID", "Type", "Memory", "SM", "Mem BW", "Pod", "Container", "Command"):
        table.add_column(
            column, justify="right" if column in ("GPU", "PID", "Memory", "SM", "Mem BW") else "left"
        )
    for row in snapshot.processes:
        proc = row.process
        mig = _mig_cell(row)
        pod = f"{row.namespace}/{row.pod}" if row.pod else (f"uid {row.pod_uid}" if row.pod_uid else "-")
        table.add_row(
            str(proc.gpu_index),
            mig,
            str(proc.pid),
            proc.kind.value,
            "-" if proc.used_memory_bytes is None else f"{proc.used_memory_bytes // MIB:,} MiB",
            _pct(proc.sm_utilization_percent),
            _pct(proc.memory_utilization_percent),
            pod,
            row.container or "-",
            row.command,
        )
    if not snapshot.processes:
        table.caption = "no processes on any GPU"
    return table
