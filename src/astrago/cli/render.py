"""Human output for the client commands: Rich tables, durations, resources."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.table import Table

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


def age(timestamp: str | None) -> str:
    if not timestamp:
        return "-"
    then = datetime.fromisoformat(timestamp)
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


def workloads_table(items: list[dict[str, Any]]) -> Table:
    table = Table(box=None, pad_edge=False)
    for column in ("ID", "NAME", "WORKSPACE", "STATUS", "GPUS", "REPLICAS", "AGE", "REASON"):
        table.add_column(column, overflow="fold" if column == "REASON" else "ellipsis")
    for w in items:
        reason = w.get("reason") or ""
        if w["status"] == "PENDING" and w.get("queue_position"):
            reason = f"#{w['queue_position']} {reason}"
        table.add_row(
            w["id"],
            w["name"],
            w["workspace"],
            status_text(w["status"]),
            gpus_text(w["spec"]["resources"]),
            str(w["replicas"]),
            age(w["created_at"]),
            reason,
        )
    return table


def memory_text(mib: int) -> str:
    return f"{mib / 1024:g}Gi" if mib >= 1024 else f"{mib}Mi"


def nodes_table(nodes: list[dict[str, Any]]) -> Table:
    table = Table(box=None, pad_edge=False)
    for column in ("NODE", "CPU (used/total)", "MEMORY (used/total)", "GPU", "MODEL", "MEMORY", "ALLOCATED"):
        table.add_column(column)
    for node in nodes:
        cpu = f"{node['allocated_cpu_milli'] / 1000:g}/{node['cpu_milli'] / 1000:g}"
        memory = f"{memory_text(node['allocated_memory_mib'])}/{memory_text(node['memory_mib'])}"
        name = node["name"] + ("" if node["schedulable"] else " (unschedulable)")
        devices = node["devices"] or [None]
        for i, device in enumerate(devices):
            first = i == 0
            gpu_cells = ["-", "-", "-", "-"]
            if device is not None:
                model = device["model"] + (" (simulated)" if device["simulated"] else "")
                gpu_cells = [
                    str(device["index"]),
                    model,
                    memory_text(device["memory_mib"]),
                    f"{device['allocated_milli'] / 1000:g}",
                ]
            table.add_row(name if first else "", cpu if first else "", memory if first else "", *gpu_cells)
    return table
