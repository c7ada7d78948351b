"""Typed telemetry: what the sampler stores and what the read side answers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field


class SampleSource(StrEnum):
    """Where a reading came from; `scripted` and `replay` readings are not real hardware."""

    NVML = "nvml"
    SMI = "smi"
    REPLAY = "replay"
    SCRIPTED = "scripted"
    PROMETHEUS = "prometheus"  # Kubernetes: the GPU exporter's series, read through Prometheus


SIMULATED_NO_SOURCE = "simulated: no utilisation source"
MIG_NOT_ATTRIBUTABLE = (
    "not attributable: the GPU does not report utilisation per process (MIG, or no per-process samples)"
)
NO_SAMPLES = "no GPU samples for this period"
NO_GPUS = "the workload holds no GPUs"


@dataclass(frozen=True, slots=True)
class ReplicaGpuReading:
    """What one replica did to one GPU in one sample period (summed over its processes on that GPU)."""

    workload_id: str
    replica_index: int
    node: str
    gpu_index: int
    gpu_util_percent: float | None  # None: not attributable (MIG), never 0 for unknown
    memory_used_bytes: int | None


@dataclass(frozen=True, slots=True)
class DeviceReading:
    """One GPU's own reading in one sample period."""

    node: str
    gpu_index: int
    gpu_util_percent: float | None
    memory_used_bytes: int | None
    memory_total_bytes: int | None
    temperature_celsius: float | None
    power_watts: float | None
    healthy: bool | None
    mig_enabled: bool


class WorkloadUtilisation(BaseModel):
    """A workload's GPU use over a period. Means and peaks are per GPU (a replica on 2 GPUs at 50 % each
    is 50 %, not 100 %); memory is per GPU too. `gpu_seconds_used` is utilisation-weighted GPU time."""

    workload_id: str
    since: datetime
    until: datetime
    samples: int = Field(description="stored rows (one per replica, GPU and sample period)")
    attributable: bool = Field(description="False when no sample could attribute utilisation (e.g. MIG)")
    gpu_util_mean_percent: float | None
    gpu_util_peak_percent: float | None
    memory_mean_bytes: int | None
    memory_peak_bytes: int | None
    gpu_seconds_sampled: float = Field(description="GPU time covered by samples with a utilisation")
    gpu_seconds_used: float = Field(description="that time weighted by utilisation (100 % = 1 s per s)")
    sources: list[SampleSource]
    reason: str | None = Field(None, description="why utilisation is unknown, when it is")


class GpuState(BaseModel):
    """The latest reading of one GPU of a node, or why there is none."""

    node: str
    gpu_index: int
    at: datetime | None
    source: SampleSource | None
    gpu_util_percent: float | None
    memory_used_bytes: int | None
    memory_total_bytes: int | None
    temperature_celsius: float | None
    power_watts: float | None
    healthy: bool | None
    mig_enabled: bool
    reason: str | None = None


class GpuUsagePoint(BaseModel):
    at: datetime
    gpu_util_percent: float | None
    gpu_util_peak_percent: float | None
    memory_used_bytes: int | None
    memory_peak_bytes: int | None


class ReplicaGpuSeries(BaseModel):
    replica_index: int
    node: str
    gpu_index: int
    points: list[GpuUsagePoint]


class WorkloadGpuUsage(BaseModel):
    """`GET /api/v1/workloads/{id}/gpu-usage`: one series per replica and GPU, points `step_s` apart."""

    workload_id: str
    since: datetime
    until: datetime
    step_s: int
    attributable: bool
    sources: list[SampleSource]
    reason: str | None
    summary: WorkloadUtilisation
    series: list[ReplicaGpuSeries]


class DeviceGpuSeries(BaseModel):
    gpu_index: int
    points: list[GpuUsagePoint]


class NodeGpuUsage(BaseModel):
    """`GET /api/v1/nodes/{name}/gpu-usage`: the node's GPUs now, and one series per GPU."""

    node: str
    since: datetime
    until: datetime
    step_s: int
    gpus: list[GpuState]
    series: list[DeviceGpuSeries]


class TopRow(BaseModel):
    """One live workload in `astrago top`: its latest sample period, summed over replicas and GPUs."""

    workload_id: str
    name: str
    workspace: str
    kind: str
    status: str
    gpus: int = Field(description="GPUs the workload holds")
    sampled_gpus: int = Field(description="GPUs with a sample in the latest period")
    gpu_util_percent: float | None = Field(description="mean over its sampled GPUs")
    memory_used_bytes: int | None = Field(description="summed over its sampled GPUs")
    at: datetime | None
    source: SampleSource | None
    reason: str | None = None


class TopListing(BaseModel):
    at: datetime
    interval_s: float
    rows: list[TopRow]
