"""Prometheus metrics from a snapshot. Names follow the seed chart (`gpu_sessions`, which it called
`gpu_session_count`; `gpu_total_sessions`, `gpu_process_info`, `gpu_process_utilization`,
`gpu_process_memory_utilization`); docs/gpu-monitoring.md documents every metric.

A process is one series per (GPU, MIG device, PID) — the model merges duplicate list entries, so no series
repeats. Values a source cannot measure are left out, never written as 0. Rendering happens once per
collection; scrapes serve the rendered bytes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from astrago.gpu.collector import AttributedProcess, CollectorHealth, Snapshot
from astrago.gpu.exposition import LabelCache, MetricFamily, render, write_atomically
from astrago.gpu.model import MIB, GpuDevice, MigDevice

DEVICE_LABELS = ("gpu", "uuid", "model")
SLOT_LABELS = ("gpu", "uuid", "mig_uuid", "mig_profile", "gpu_instance_id", "compute_instance_id")
PROCESS_LABELS = (*SLOT_LABELS, "pid", "namespace", "pod", "container")
PROCESS_INFO_LABELS = (*PROCESS_LABELS, "type", "command", "container_id", "pod_uid")
ERROR_STAGES = ("source", "device", "processes", "utilization", "mig", "command", "collector")
TEXTFILE_NAME = "astrago_gpu.prom"
MHZ = 1_000_000

# (metric, help, GpuDevice attribute, scale to base units)
_DEVICE_VALUES: tuple[tuple[str, str, str, float], ...] = (
    (
        "gpu_utilization",
        "Percent of time a kernel ran on the GPU in the last sample period.",
        "utilization_percent",
        1,
    ),
    (
        "gpu_memory_utilization",
        "Percent of time device memory was read or written (bandwidth activity, not memory used).",
        "memory_utilization_percent",
        1,
    ),
    ("gpu_memory_used_bytes", "Device memory in use, bytes.", "memory_used_mib", MIB),
    ("gpu_memory_total_bytes", "Device memory capacity, bytes.", "memory_total_mib", MIB),
    ("gpu_temperature_celsius", "GPU core temperature, degrees Celsius.", "temperature_celsius", 1),
    ("gpu_power_usage_watts", "Power draw, watts.", "power_watts", 1),
    ("gpu_sm_clock_hertz", "Current SM clock, hertz.", "sm_clock_mhz", MHZ),
    ("gpu_memory_clock_hertz", "Current memory clock, hertz.", "memory_clock_mhz", MHZ),
)


def _device_labels(device: GpuDevice) -> tuple[str, ...]:
    return (str(device.index), device.uuid or "", device.model)


def _slot_labels(
    device: GpuDevice, mig: MigDevice | None, gi: int | None = None, ci: int | None = None
) -> tuple[str, ...]:
    if mig is not None:
        gi, ci = mig.gpu_instance_id, mig.compute_instance_id
    return (
        str(device.index),
        device.uuid or "",
        (mig.uuid or "") if mig else "",
        (mig.profile or "") if mig else "",
        "" if gi is None else str(gi),
        "" if ci is None else str(ci),
    )


def _process_labels(row: AttributedProcess) -> tuple[str, ...]:
    proc = row.process
    slot = _slot_labels(row.device, row.mig, proc.gpu_instance_id, proc.compute_instance_id)
    return (*slot, str(proc.pid), row.namespace, row.pod, row.container)


def _device_metrics(devices: tuple[GpuDevice, ...]) -> Iterator[MetricFamily]:
    info = MetricFamily(
        "gpu_info", "GPU identity; always 1.", labels=(*DEVICE_LABELS, "name", "driver_version", "mig_mode")
    )
    healthy = MetricFamily(
        "gpu_healthy",
        "1 if the GPU answered this collection, 0 if it failed (lost, unreachable).",
        labels=DEVICE_LABELS,
    )
    values = [
        (MetricFamily(name, doc, labels=DEVICE_LABELS), attr, scale)
        for name, doc, attr, scale in _DEVICE_VALUES
    ]
    mig_info = MetricFamily(
        "gpu_mig_device_info",
        "MIG device (GPU instance, compute instance) identity; always 1.",
        labels=SLOT_LABELS,
    )
    mig_used = MetricFamily(
        "gpu_mig_memory_used_bytes",
        "Memory in use on the MIG device's GPU instance, bytes.",
        labels=SLOT_LABELS,
    )
    mig_total = MetricFamily(
        "gpu_mig_memory_total_bytes", "Memory of the MIG device's GPU instance, bytes.", labels=SLOT_LABELS
    )
    for device in devices:
        labels = _device_labels(device)
        mig_mode = "enabled" if device.mig_enabled else "disabled"
        info.add((*labels, device.name, device.driver_version or "", mig_mode), 1)
        healthy.add(labels, 1 if device.healthy else 0)
        for family, attr, scale in values:
            value = getattr(device, attr)
            if value is not None and device.healthy:
                family.add(labels, value * scale)
        for mig in device.mig_devices:
            slot = _slot_labels(device, mig)
            mig_info.add(slot, 1)
            if mig.memory_used_mib is not None:
                mig_used.add(slot, mig.memory_used_mib * MIB)
            if mig.memory_total_bytes is not None:
                mig_total.add(slot, mig.memory_total_bytes)
    yield info
    yield healthy
    for family, _, _ in values:
        yield family
    yield from (mig_info, mig_used, mig_total)


def _session_metrics(snapshot: Snapshot) -> Iterator[MetricFamily]:
    """Sessions are distinct PIDs: per schedulable device (a whole GPU, or each MIG device), and node-wide."""
    per_slot: dict[tuple[str, ...], set[int]] = {}
    for device in snapshot.devices:
        if device.mig_enabled and device.mig_devices:
            for mig in device.mig_devices:
                per_slot[_slot_labels(device, mig)] = set()
        else:
            per_slot[_slot_labels(device, None)] = set()
    for row in snapshot.processes:
        proc = row.process
        slot = _slot_labels(row.device, row.mig, proc.gpu_instance_id, proc.compute_instance_id)
        per_slot.setdefault(slot, set()).add(proc.pid)
    # The seed called this gpu_session_count; a gauge ending in _count reads as a histogram part and fails
    # `promtool check metrics`, so it is gpu_sessions (docs/gpu-monitoring.md gives a rule for the old name).
    count = MetricFamily(
        "gpu_sessions",
        "Processes on this GPU, or on this MIG device when MIG is enabled.",
        labels=SLOT_LABELS,
    )
    for slot, pids in per_slot.items():
        count.add(slot, len(pids))
    yield count
    total = MetricFamily(
        "gpu_total_sessions",
        "Distinct processes using any GPU of this node (a multi-GPU process counts once).",
    )
    total.add((), len({row.process.pid for row in snapshot.processes}))
    yield total


def _process_metrics(rows: tuple[AttributedProcess, ...]) -> Iterator[MetricFamily]:
    info = MetricFamily(
        "gpu_process_info",
        "A process on a GPU or MIG device, with its command and pod; always 1.",
        labels=PROCESS_INFO_LABELS,
    )
    sm = MetricFamily(
        "gpu_process_utilization",
        "Percent of time the process ran kernels on the GPU (SM), newest sample; absent on MIG.",
        labels=PROCESS_LABELS,
    )
    bandwidth = MetricFamily(
        "gpu_process_memory_utilization",
        "Percent of time the process read or wrote device memory (bandwidth, not space used); absent on MIG.",
        labels=PROCESS_LABELS,
    )
    used = MetricFamily(
        "gpu_process_memory_used_bytes", "Device memory the process holds, bytes.", labels=PROCESS_LABELS
    )
    share = MetricFamily(
        "gpu_process_memory_used_ratio",
        "Device memory the process holds as a share (0-1) of its GPU's, or its MIG device's, capacity.",
        labels=PROCESS_LABELS,
    )
    for row in rows:
        proc = row.process
        labels = _process_labels(row)
        info.add((*labels, proc.kind.value, row.command, row.container_id, row.pod_uid), 1)
        if proc.sm_utilization_percent is not None:
            sm.add(labels, proc.sm_utilization_percent)
        if proc.memory_utilization_percent is not None:
            bandwidth.add(labels, proc.memory_utilization_percent)
        if proc.used_memory_bytes is not None:
            used.add(labels, proc.used_memory_bytes)
            capacity = row.capacity_bytes
            if capacity:
                share.add(labels, proc.used_memory_bytes / capacity)
    yield from (info, sm, bandwidth, used, share)


def _health_metrics(health: CollectorHealth, snapshot: Snapshot | None) -> Iterator[MetricFamily]:
    duration = MetricFamily(
        "gpu_exporter_collection_duration_seconds", "Wall time of the last collection, seconds."
    )
    if health.last_duration_s is not None:
        duration.add((), health.last_duration_s)
    yield duration
    collections = MetricFamily(
        "gpu_exporter_collections_total", "Collections run since the exporter started.", type="counter"
    )
    collections.add((), health.collections)
    yield collections
    started = MetricFamily(
        "gpu_exporter_start_time_seconds",
        "Unix time this exporter started; its counters (Xid errors, collections) count from then.",
    )
    started.add((), health.started_at)
    yield started
    errors = MetricFamily(
        "gpu_exporter_collection_errors_total",
        "Errors during collection, by stage (source = the whole reading was lost).",
        type="counter",
        labels=("stage",),
    )
    for stage in sorted(set(ERROR_STAGES) | set(health.errors)):
        errors.add((stage,), health.errors.get(stage, 0))
    yield errors
    last = MetricFamily(
        "gpu_exporter_last_success_timestamp_seconds", "Unix time of the last successful collection."
    )
    if health.last_success is not None:
        last.add((), health.last_success)
    yield last
    hidden = MetricFamily(
        "gpu_exporter_processes_not_in_proc",
        "GPU processes whose PID is not visible under the proc root (exited, or the exporter lacks hostPID).",
    )
    if snapshot is not None:
        hidden.add((), sum(1 for row in snapshot.processes if not row.in_proc))
    yield hidden
    if health.pods_current is not None:
        watch = MetricFamily(
            "gpu_exporter_pod_watch_up",
            "1 while the watch of this node's pods is current, 0 while it fails (pod names may be missing).",
        )
        watch.add((), 1 if health.pods_current else 0)
        yield watch


def _gpu_fault_metrics(snapshot: Snapshot | None, health: CollectorHealth) -> Iterator[MetricFamily]:
    """What the driver says about each GPU's health (the signals the server fences GPUs on), so that a
    cluster's Prometheus sees them too. A signal the GPU does not report has no sample (never 0)."""
    devices = {d.index: d for d in snapshot.devices} if snapshot is not None else {}
    ecc = MetricFamily(
        "gpu_ecc_uncorrectable_errors",
        "Uncorrectable ECC errors since the driver loaded (volatile counter).",
        labels=DEVICE_LABELS,
    )
    repair = MetricFamily(
        "gpu_memory_repair_pending",
        "1 while a row remap or page retirement waits for a GPU reset, else 0.",
        labels=DEVICE_LABELS,
    )
    slowdown = MetricFamily(
        "gpu_slowdown",
        "1 per clock slowdown reason active now (hw, hw_thermal, hw_power_brake, sw_thermal).",
        labels=(*DEVICE_LABELS, "reason"),
    )
    xids = MetricFamily(
        "gpu_xid_errors_total",
        "Xid errors the driver reported for the GPU since the exporter started, by Xid code.",
        type="counter",
        labels=(*DEVICE_LABELS, "xid"),
    )
    for signals in snapshot.health if snapshot is not None else ():
        device = devices.get(signals.gpu_index)
        if device is None:
            continue
        labels = _device_labels(device)
        if signals.ecc_uncorrectable is not None:
            ecc.add(labels, signals.ecc_uncorrectable)
        pending = (signals.remapped_rows_pending, signals.retired_pages_pending)
        if any(flag is not None for flag in pending):
            repair.add(labels, 1 if any(pending) else 0)
        for reason in sorted(signals.slowdowns):
            slowdown.add((*labels, reason.value), 1)
    for (index, xid), count in sorted(health.xids.items()):
        device = devices.get(index)
        labels = _device_labels(device) if device is not None else (str(index), "", "")
        xids.add((*labels, str(xid)), count)
    yield from (ecc, repair, slowdown, xids)


def snapshot_families(snapshot: Snapshot | None, health: CollectorHealth) -> Iterator[MetricFamily]:
    if snapshot is not None:
        yield from _device_metrics(snapshot.devices)
        yield from _session_metrics(snapshot)
        yield from _process_metrics(snapshot.processes)
    yield from _gpu_fault_metrics(snapshot, health)
    yield from _health_metrics(health, snapshot)


class MetricsRenderer:
    """Turns snapshots (plus the collector's health) into the text exposition format."""

    def __init__(self, health: CollectorHealth) -> None:
        self.health = health
        self._labels = LabelCache()

    def render(self, snapshot: Snapshot | None) -> bytes:
        return render(snapshot_families(snapshot, self.health), self._labels)

    def write_textfile(
        self, directory: Path, snapshot: Snapshot | None, exposition: bytes | None = None
    ) -> Path:
        """For node-exporter's textfile collector, written atomically (see `write_atomically`)."""
        target = directory / TEXTFILE_NAME
        write_atomically(target, exposition if exposition is not None else self.render(snapshot))
        return target
