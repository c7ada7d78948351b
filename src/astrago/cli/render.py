"""Human output for the client commands: the tables of workloads and nodes, durations, resources."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Any

from rich.console import Console

from astrago.cli.output import Cell, Column, OutputFormat, print_table
from astrago.services.schemas import DeviceOut, NodeOut, WorkloadOut

console = Console(highlight=False, soft_wrap=True)

STATUS_STYLES = {
    "PENDING": "yellow",
    "ADMITTED": "cyan",
    "STARTING": "cyan",
    "RUNNING": "green",
    "SUCCEEDED": "bold green",
    "FAILED": "bold red",
    "CANCELLED": "dim",
    "PREEMPTED": "magenta",
}


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def age(timestamp: datetime | str | None) -> str:
    if not timestamp:
        return "-"
    then = datetime.fromisoformat(timestamp) if isinstance(timestamp, str) else timestamp
    seconds = int((datetime.now(UTC) - then).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def gpus_text(resources: dict[str, Any]) -> str:
    if resources.get("gpu_share_milli"):
        text = f"{resources['gpu_share_milli'] / 1000:g} share"
    elif resources.get("mig_profile"):
        text = f"MIG {resources['mig_profile']}"
    else:
        text = str(resources.get("gpus", 0))
    if resources.get("gpu_model"):
        text += f" {resources['gpu_model']}"
    return text


def status_text(status: str) -> str:
    return f"[{STATUS_STYLES.get(status, 'white')}]{status}[/]"


def status_cell(status: str) -> Cell:
    return Cell(status, STATUS_STYLES.get(status))


def memory_text(mib: int) -> str:
    return f"{mib / 1024:g}Gi" if mib >= 1024 else f"{mib}Mi"


WORKLOAD_COLUMNS = (
    Column("ID"),
    Column("NAME"),
    Column("WORKSPACE"),
    Column("STATUS"),
    Column("GPUS"),
    Column("REPLICAS"),
    Column("AGE"),
    Column("CPU", wide_only=True),
    Column("MEMORY", wide_only=True),
    Column("PRIORITY", wide_only=True),
    Column("NODES", wide_only=True),
    Column("BY", wide_only=True),
    Column("REASON", free_text=True),
    Column("COMMAND", free_text=True, wide_only=True),
)


def print_workloads(items: list[WorkloadOut], fmt: OutputFormat) -> None:
    print_table(WORKLOAD_COLUMNS, [workload_row(w) for w in items], fmt)


def workload_row(w: WorkloadOut) -> list[str | Cell]:
    reason = w.reason or ""
    if w.status == "PENDING" and w.queue_position:
        reason = f"#{w.queue_position} {reason}"
    res = w.spec["resources"]
    nodes = sorted({p.node for p in w.placements})
    return [
        w.id,
        w.name,
        w.workspace,
        status_cell(w.status.value),
        gpus_text(res),
        str(w.replicas),
        age(w.created_at),
        f"{res['cpu_milli'] / 1000:g}",
        memory_text(res["memory_mib"]),
        str(w.priority),
        ",".join(nodes),
        w.created_by or "",
        reason,
        " ".join(w.spec.get("command") or ()) or (w.spec.get("image") or ""),
    ]


NODE_COLUMNS = (
    Column("NODE"),
    Column("CPU"),
    Column("MEMORY"),
    Column("GPU"),
    Column("MODEL"),
    Column("GPU-MEMORY"),
    Column("ALLOCATED"),
    Column("HEALTH"),
    Column("PRODUCT", wide_only=True),
    Column("UUID", wide_only=True),
)


def _node_note(node: NodeOut) -> str:
    if node.cordon is not None:
        return " (cordoned" + (f": {node.cordon.reason})" if node.cordon.reason else ")")
    return "" if node.schedulable else " (unschedulable)"


def _device_health(node: NodeOut, device: DeviceOut) -> str:
    """'healthy', 'unhealthy: XID 79 (...)', 'degraded: ...', 'cordoned: reason'; a lost GPU says so."""
    if not device.healthy:
        return "unhealthy: not answering the driver"
    words = device.health.state.value
    if device.health.cause:
        words += f": {device.health.cause}"
    if device.cordon is not None:
        cordoned = "cordoned" + (f": {device.cordon.reason}" if device.cordon.reason else "")
        words = cordoned if device.health.state.value == "healthy" else f"{words}; {cordoned}"
    return words


def print_nodes(nodes: list[NodeOut], fmt: OutputFormat) -> None:
    """One row per GPU (a node without GPUs has one row); CPU and memory are `allocated/total`."""
    rows = []
    for node in nodes:
        cpu = f"{node.allocated_cpu_milli / 1000:g}/{node.cpu_milli / 1000:g}"
        memory = f"{memory_text(node.allocated_memory_mib)}/{memory_text(node.memory_mib)}"
        name = node.name + _node_note(node)
        if not node.devices:
            rows.append([name, cpu, memory, "-", "-", "-", "-", "-", "-", "-"])
        for device in node.devices:
            model = device.model + (" (simulated)" if device.simulated else "")
            rows.append(
                [
                    name,
                    cpu,
                    memory,
                    str(device.index),
                    model,
                    memory_text(device.memory_mib),
                    f"{device.allocated_milli / 1000:g}",
                    _device_health(node, device),
                    device.product or "-",
                    device.uuid or "-",
                ]
            )
    print_table(NODE_COLUMNS, rows, fmt)
