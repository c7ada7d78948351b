"""Prometheus metrics from a snapshot. Names follow the seed chart (`gpu_sessions`, which it called
`gpu_session_count`; `gpu_total_sessions`, `gpu_process_info`, `gpu_process_utilization`,
`gpu_process_memory_utilization`); docs/gpu-monitoring.md documents every metric.

A process is one series per (GPU, MIG device, PID) — the model merges duplicate list entries, so no series
repeats. Values a source cannot measure are left out, never written as 0. Rendering happens once per
collection; scrapes serve the rendered bytes."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest, write_to_textfile
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector as PromCollector

from astrago.gpu.collector import AttributedProcess, CollectorHealth, Snapshot
from astrago.gpu.model import GpuDevice, MigDevice

DEVICE_LABELS = ("gpu", "uuid", "model")
SLOT_LABELS = ("gpu", "uuid", "mig_uuid", "mig_profile", "gpu_instance_id", "compute_instance_id")
PROCESS_LABELS = (*SLOT_LABELS, "pid", "namespace", "pod", "container")
PROCESS_INFO_LABELS = (*PROCESS_LABELS, "type", "command", "container_id", "pod_uid")
ERROR_STAGES = ("source", "device", "processes", "utilization", "mig", "command")
TEXTFILE_NAME = "astrago_gpu.prom"
MHZ = 1_000_000


def _device_labels(device: GpuDevice) -> list[str]:
    return [str(device.index), device.uuid or "", device.model]


def _slot_labels(
    device: GpuDevice, mig: MigDevice | None, gi: int | None = None, ci: int | None = None
) -> list[str]:
    if mig is not None:
        gi, ci = mig.gpu_instance_id, mig.compute_instance_id
    return [
        str(device.index),
        device.uuid or "",
        (mig.uuid or "") if mig else "",
        (mig.profile or "") if mig else "",
        "" if gi is None else str(gi),
        "" if ci is None else str(ci),
    ]


def _process_labels(row: AttributedProcess) -> list[str]:
    proc = row.process
    slot = _slot_labels(row.device, row.mig, proc.gpu_instance_id, proc.compute_instance_id)
    return [*slot, str(proc.pid), row.namespace, row.pod, row.container]


class SnapshotMetrics(PromCollector):
    """A prometheus_client collector over the current snapshot and the collector's health."""

    def __init__(self, health: CollectorHealth) -> None:
        self.health = health
        self.snapshot: Snapshot | None = None

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        if self.snapshot is not None:
            yield from _device_metrics(self.snapshot.devices)
            yield from _session_metrics(self.snapshot)
            yield from _process_metrics(self.snapshot.processes)
        yield from _health_metrics(self.health, self.snapshot)


def _gauge(name: str, documentation: str, labels: Iterable[str] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=list(labels))


def _device_metrics(devices: Iterable[GpuDevice]) -> Iterator[GaugeMetricFamily]:
    info = _gauge(
        "gpu_info", "GPU identity; always 1.", (*DEVICE_LABELS, "name", "driver_version", "mig_mode")
    )
    healthy = _gauge(
        "gpu_healthy",
        "1 if the GPU answered this collection, 0 if it failed (lost, unreachable).",
        DEVICE_LABELS,
    )
    families = [
        (
            "gpu_utilization",
            "Percent of time a kernel ran on the GPU in the last sample period.",
            "utilization_percent",
            1.0,
        ),
        (
            "gpu_memory_utilization",
            "Percent of time device memory was read or written (bandwidth activity, not memory used).",
            "memory_utilization_percent",
            1.0,
        ),
        ("gpu_memory_used_bytes", "Device memory in use, bytes.", "memory_used_mib", float(1024 * 1024)),
        ("gpu_memory_total_bytes", "Device memory capacity, bytes.", "memory_total_mib", float(1024 * 1024)),
        ("gpu_temperature_celsius", "GPU core temperature, degrees Celsius.", "temperature_celsius", 1.0),
        ("gpu_power_usage_watts", "Power draw, watts.", "power_watts", 1.0),
        ("gpu_sm_clock_hertz", "Current SM clock, hertz.", "sm_clock_mhz", float(MHZ)),
        ("gpu_memory_clock_hertz", "Current memory clock, hertz.", "memory_clock_mhz", float(MHZ)),
    ]
    gauges = {attr: (_gauge(name, doc, DEVICE_LABELS), scale) for name, doc, attr, scale in families}
    mig_info = _gauge(
        "gpu_mig_device_info", "MIG device (GPU instance, compute instance) identity; always 1.", SLOT_LABELS
    )
    mig_used = _gauge(
        "gpu_mig_memory_used_bytes", "Memory in use on the MIG device's GPU instance, bytes.", SLOT_LABELS
    )
    mig_total = _gauge(
        "gpu_mig_memory_total_bytes", "Memory of the MIG device's GPU instance, bytes.", SLOT_LABELS
    )
    for device in devices:
        labels = _device_labels(device)
        mig_mode = "enabled" if device.mig_enabled else "disabled"
        info.add_metric([*labels, device.name, device.driver_version or "", mig_mode], 1)
        healthy.add_metric(labels, 1 if device.healthy else 0)
        for attr, (family, scale) in gauges.items():
            value = getattr(device, attr)
            if value is not None and device.healthy:
                family.add_metric(labels, float(value) * scale)
        for mig in device.mig_devices:
            slot = _slot_labels(device, mig)
            mig_info.add_metric(slot, 1)
            if mig.memory_used_mib is not None:
                mig_used.add_metric(slot, mig.memory_used_mib * 1024 * 1024)
            if mig.memory_total_bytes is not None:
                mig_total.add_metric(slot, mig.memory_total_bytes)
    yield info
    yield healthy
    for family, _ in gauges.values():
        yield family
    yield mig_info
    yield mig_used
    yield mig_total


def _session_metrics(snapshot: Snapshot) -> Iterator[GaugeMetricFamily]:
    """Sessions are distinct PIDs: per schedulable device (a whole GPU, or each MIG device), and node-wide."""
    per_slot: dict[tuple[str, ...], set[int]] = {}
    for device in snapshot.devices:
        if device.mig_enabled and device.mig_devices:
            for mig in device.mig_devices:
                per_slot[tuple(_slot_labels(device, mig))] = set()
        else:
            per_slot[tuple(_slot_labels(device, None))] = set()
    for row in snapshot.processes:
        slot = tuple(_process_labels(row)[: len(SLOT_LABELS)])
        per_slot.setdefault(slot, set()).add(row.process.pid)
    # The seed called this gpu_session_count; a gauge ending in _count reads as a histogram part and fails
    # `promtool check metrics`, so it is gpu_sessions (docs/gpu-monitoring.md gives a rule for the old name).
    count = _gauge(
        "gpu_sessions", "Processes on this GPU, or on this MIG device when MIG is enabled.", SLOT_LABELS
    )
    for slot, pids in per_slot.items():
        count.add_metric(list(slot), len(pids))
    yield count
    total = _gauge(
        "gpu_total_sessions",
        "Distinct processes using any GPU of this node (a multi-GPU process counts once).",
    )
    total.add_metric([], len({row.process.pid for row in snapshot.processes}))
    yield total


def _process_metrics(rows: Iterable[AttributedProcess]) -> Iterator[GaugeMetricFamily]:
    info = _gauge(
        "gpu_process_info",
        "A process on a GPU or MIG device, with its command and pod; always 1.",
        PROCESS_INFO_LABELS,
    )
    sm = _gauge(
        "gpu_process_utilization",
        "Percent of time the process ran kernels on the GPU (SM), newest sample; absent on MIG.",
        PROCESS_LABELS,
    )
    bandwidth = _gauge(
        "gpu_process_memory_utilization",
        "Percent of time the process read or wrote device memory (bandwidth, not space used); absent on MIG.",
        PROCESS_LABELS,
    )
    used = _gauge("gpu_process_memory_used_bytes", "Device memory the process holds, bytes.", PROCESS_LABELS)
    share = _gauge(
        "gpu_process_memory_used_ratio",
        "Device memory the process holds as a share (0-1) of its GPU's, or its MIG device's, capacity.",
        PROCESS_LABELS,
    )
    for row in rows:
        proc = row.process
        labels = _process_labels(row)
        info.add_metric([*labels, proc.kind.value, row.command, row.container_id, row.pod_uid], 1)
        if proc.sm_utilization_percent is not None:
            sm.add_metric(labels, proc.sm_utilization_percent)
        if proc.memory_utilization_percent is not None:
            bandwidth.add_metric(labels, proc.memory_utilization_percent)
        if proc.used_memory_bytes is not None:
            used.add_metric(labels, proc.used_memory_bytes)
            capacity = row.capacity_bytes
            if capacity:
                share.add_metric(labels, proc.used_memory_bytes / capacity)
    yield from (info, sm, bandwidth, used, share)


def _health_metrics(
    health: CollectorHealth, snapshot: Snapshot | None
) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
    duration = _gauge(
        "gpu_exporter_collection_duration_seconds", "Wall time of the last collection, seconds."
    )
    if health.last_duration_s is not None:
        duration.add_metric([], health.last_duration_s)
    yield duration
    collections = CounterMetricFamily(
        "gpu_exporter_collections", "Collections run since the exporter started."
    )
    collections.add_metric([], health.collections)
    yield collections
    errors = CounterMetricFamily(
        "gpu_exporter_collection_errors",
        "Errors during collection, by stage (source = whole reading lost).",
        labels=["stage"],
    )
    for stage in sorted(set(ERROR_STAGES) | set(health.errors)):
        errors.add_metric([stage], health.errors.get(stage, 0))
    yield errors
    last = _gauge(
        "gpu_exporter_last_success_timestamp_seconds", "Unix time of the last successful collection."
    )
    if health.last_success is not None:
        last.add_metric([], health.last_success)
    yield last
    hidden = _gauge(
        "gpu_exporter_processes_not_in_proc",
        "GPU processes whose PID is not visible under the proc root (exited, or the exporter lacks hostPID).",
    )
    if snapshot is not None:
        hidden.add_metric([], sum(1 for row in snapshot.processes if not row.in_proc))
    yield hidden


class MetricsRenderer:
    """Holds the registry; `render()` turns the current snapshot into the text exposition format."""

    def __init__(self, health: CollectorHealth) -> None:
        self.metrics = SnapshotMetrics(health)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self.metrics)

    def render(self, snapshot: Snapshot | None) -> bytes:
        self.metrics.snapshot = snapshot
        return generate_latest(self.registry)

    def write_textfile(self, directory: Path, snapshot: Snapshot | None) -> Path:
        """For node-exporter's textfile collector: written to a temporary name, then renamed into place, so
        node-exporter never reads half a file (the temporary name does not end in `.prom`)."""
        self.metrics.snapshot = snapshot
        target = directory / TEXTFILE_NAME
        write_to_textfile(str(target), self.registry)
        return target
