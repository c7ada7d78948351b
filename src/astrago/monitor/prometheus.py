"""Telemetry on Kubernetes: the GPU exporter (`astrago gpu-exporter`, a DaemonSet) labels each GPU process
with its pod, and Prometheus scrapes it; the server reads the latest values through Prometheus's HTTP API
and stores them like the local sampler does.

Each exporter target must carry a `node` label (the chart's scrape configuration relabels
`__meta_kubernetes_pod_node_name` to it), so that per-GPU rows name their node; per-workload rows take the
node of the pod's replica as the exporter's target reports it."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from astrago.backends.kubernetes.naming import object_name
from astrago.domain.status import LIVE_STATUSES
from astrago.gpu.model import GpuProcess, ProcessKind
from astrago.monitor.attribution import ReplicaRef, owner_of_pod
from astrago.monitor.sampler import CycleResult, device_row, replica_reading, until_next_period, workload_row
from astrago.monitor.schemas import DeviceReading, ReplicaGpuReading, SampleSource
from astrago.services.context import ServiceContext
from astrago.store.repositories.gpu_samples import (
    GpuSampleRepository,
    bucket_start,
)

log = logging.getLogger(__name__)

PROCESS_MEMORY = "gpu_process_memory_used_bytes"
PROCESS_UTILISATION = "gpu_process_utilization"
DEVICE_SERIES = {
    "util": "gpu_utilization",
    "memory_used": "gpu_memory_used_bytes",
    "memory_total": "gpu_memory_total_bytes",
    "temperature": "gpu_temperature_celsius",
    "power": "gpu_power_usage_watts",
    "healthy": "gpu_healthy",
}


class PrometheusUnavailable(RuntimeError):
    """Prometheus did not answer a query (this cycle is skipped, and retried next interval)."""


@dataclass(frozen=True, slots=True)
class Series:
    labels: dict[str, str]
    value: float


@dataclass(frozen=True, slots=True)
class SeriesSamples:
    """The raw samples of one series in a range: (Unix time in seconds, value), oldest first."""

    labels: dict[str, str]
    samples: list[tuple[float, float]]


class PrometheusReader:
    """Instant queries over Prometheus's HTTP API (`GET /api/v1/query`)."""

    def __init__(self, url: str, client: httpx.AsyncClient | None = None, timeout_s: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.client = client or httpx.AsyncClient(timeout=timeout_s)

    async def query(self, promql: str, at: float | None = None) -> list[Series]:
        """An instant vector (`at`: the evaluation time, Unix seconds; default Prometheus's now)."""
        result = await self._result(promql, at)
        return [
            Series(labels=dict(item["metric"]), value=float(item["value"][1]))
            for item in result
            if item["value"][1] not in ("NaN", "+Inf", "-Inf")
        ]

    async def range_samples(self, promql: str, at: float) -> list[SeriesSamples]:
        """The raw samples of a range-vector selector such as `name[90s]`, evaluated at `at`."""
        return [
            SeriesSamples(
                labels=dict(item["metric"]),
                samples=[
                    (float(ts), float(value))
                    for ts, value in item["values"]
                    if value not in ("NaN", "+Inf", "-Inf")
                ],
            )
            for item in await self._result(promql, at)
        ]

    async def _result(self, promql: str, at: float | None) -> list[dict[str, Any]]:
        params = {"query": promql} if at is None else {"query": promql, "time": f"{at:.3f}"}
        try:
            response = await self.client.get(f"{self.url}/api/v1/query", params=params)
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise PrometheusUnavailable(f"Prometheus at {self.url} did not answer {promql!r}: {exc}") from exc
        if response.status_code != 200 or body.get("status") != "success":
            raise PrometheusUnavailable(
                f"Prometheus refused {promql!r}: {body.get('error') or response.text}"
            )
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    async def close(self) -> None:
        await self.client.aclose()


class PrometheusSampler:
    """Samples every node's GPUs from Prometheus, for the workloads of `namespace`."""

    def __init__(self, ctx: ServiceContext, reader: PrometheusReader, namespace: str) -> None:
        self.ctx = ctx
        self.reader = reader
        self.namespace = namespace
        self.interval_s = ctx.settings.telemetry_interval_s
        self._last_slot: datetime | None = None

    async def run(self) -> None:
        while True:
            try:
                await self.sample(datetime.now(UTC))
            except PrometheusUnavailable as exc:
                log.warning("GPU sampling skipped: %s", exc)
            except Exception:
                log.exception("GPU sampling from Prometheus failed; trying again next interval")
            await asyncio.sleep(until_next_period(self.interval_s))

    async def sample(self, now: datetime) -> CycleResult | None:
        slot = bucket_start(now, self.interval_s)
        if self._last_slot is not None and slot <= self._last_slot:
            return None
        selector = f'{{namespace="{_escape(self.namespace)}"}}'
        memory = await self.reader.query(PROCESS_MEMORY + selector)
        utilisation = await self.reader.query(PROCESS_UTILISATION + selector)
        devices = {key: await self.reader.query(name) for key, name in DEVICE_SERIES.items()}
        names, replicas = await self._live_workloads()
        readings, unattributed = attribute_series(memory, utilisation, names, replicas)
        device_readings = device_readings_of(devices)
        async with self.ctx.write() as session:
            await GpuSampleRepository(session).insert_samples(
                [
                    workload_row(reading, slot, self.interval_s, SampleSource.PROMETHEUS)
                    for reading in readings
                ],
                [
                    device_row(reading, slot, self.interval_s, SampleSource.PROMETHEUS)
                    for reading in device_readings
                ],
            )
        self._last_slot = slot
        return CycleResult(slot, len(readings), len(device_readings), unattributed)

    async def _live_workloads(self) -> tuple[dict[str, str], dict[str, int]]:
        async with self.ctx.read() as session:
            live = await GpuSampleRepository(session).live_workload_replicas([s.value for s in LIVE_STATUSES])
        return {object_name(workload_id): workload_id for workload_id in live}, live


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _process_key(labels: dict[str, str]) -> tuple[str, ...]:
    return tuple(
        labels.get(name, "")
        for name in ("node", "gpu", "pid", "pod", "gpu_instance_id", "compute_instance_id", "mig_uuid")
    )


def attribute_series(
    memory: Sequence[Series], utilisation: Sequence[Series], names: dict[str, str], replicas: dict[str, int]
) -> tuple[list[ReplicaGpuReading], int]:
    """One reading per (replica, node, GPU) from the exporter's per-process series. A process with memory
    but no utilisation series (MIG, or a driver without per-process samples) makes utilisation unknown."""
    shares = {_process_key(series.labels): series.value for series in utilisation}
    used_bytes = {_process_key(series.labels): series.value for series in memory}
    processes: dict[tuple[ReplicaRef, str, int], list[GpuProcess]] = defaultdict(list)
    unattributed = 0
    seen: set[tuple[str, ...]] = set()
    for series in [*memory, *utilisation]:
        key = _process_key(series.labels)
        if key in seen:
            continue
        seen.add(key)
        labels = series.labels
        owner = owner_of_pod(labels.get("pod", ""), names, replicas) if labels.get("pod") else None
        if owner is None or not labels.get("gpu", "").isdigit():
            unattributed += 1
            continue
        gpu = int(labels["gpu"])
        mig = bool(labels.get("gpu_instance_id"))
        used = used_bytes.get(key)
        processes[(owner, labels.get("node", ""), gpu)].append(
            GpuProcess(
                pid=int(labels.get("pid") or 0),
                gpu_index=gpu,
                kind=ProcessKind.COMPUTE,
                name=labels.get("pod", ""),
                used_memory_bytes=None if used is None else int(used),
                gpu_instance_id=int(labels["gpu_instance_id"]) if mig else None,
                compute_instance_id=int(labels.get("compute_instance_id") or 0) if mig else None,
                sm_utilization_percent=None if mig else shares.get(key),
            )
        )
    readings = [
        replica_reading(node, owner, gpu, procs, None) for (owner, node, gpu), procs in processes.items()
    ]
    return readings, unattributed


def device_readings_of(devices: dict[str, list[Series]]) -> list[DeviceReading]:
    """Per-GPU readings from the exporter's device series; targets without a `node` label are skipped."""
    values: dict[tuple[str, int], dict[str, float]] = defaultdict(dict)
    for key, series_list in devices.items():
        for series in series_list:
            node, gpu = series.labels.get("node"), series.labels.get("gpu", "")
            if node and gpu.isdigit():
                values[(node, int(gpu))][key] = series.value
    return [
        DeviceReading(
            node=node,
            gpu_index=gpu,
            gpu_util_percent=found.get("util"),
            memory_used_bytes=_int(found.get("memory_used")),
            memory_total_bytes=_int(found.get("memory_total")),
            temperature_celsius=found.get("temperature"),
            power_watts=found.get("power"),
            healthy=None if "healthy" not in found else found["healthy"] == 1,
            mig_enabled=False,
        )
        for (node, gpu), found in sorted(values.items())
    ]


def _int(value: float | None) -> int | None:
    return None if value is None else int(value)
