"""Trace readers: the Alibaba openb CSVs and AstraGo's native YAML/JSON trace format.

Both give `NodeInfo`s for the cluster and `TracePod`s for the workload. Readers take text and the file's
name (for messages and to pick the format), so the package stays free of I/O.

openb node list: `sn,cpu_milli,memory_mib,gpu,model`. openb pod list:
`name,cpu_milli,memory_mib,num_gpu,gpu_milli[,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time]`
(a pod with gpu_milli < 1000 takes that share of one GPU; gpu_spec "A|B" allows either model).

The native format (documented in docs/simulator.md) is a mapping with `nodes` and/or `pods` lists."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from astrago.domain.resources import ResourceParseError, ResourceRequest, parse_cpu_milli, parse_memory_mib
from astrago.scheduler.types import GpuInfo, NodeInfo

OPENB_NODE_COLUMNS = ("sn", "cpu_milli", "memory_mib", "gpu", "model")
OPENB_POD_COLUMNS = ("name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli")
OPENB_TIME_COLUMNS = ("creation_time", "deletion_time", "scheduled_time")


class TraceError(ValueError):
    """A trace that cannot be read; the message names the file, line and field."""


@dataclass(frozen=True, slots=True)
class TracePod:
    """One workload of a trace. Times are seconds from the trace's start (None when the trace has none)."""

    name: str
    request: ResourceRequest
    replicas: int = 1
    priority: int = 0
    workspace: str | None = None
    creation_time: int | None = None
    scheduled_time: int | None = None
    deletion_time: int | None = None
    duration: int | None = None  # seconds it runs once started

    @property
    def run_time(self) -> int | None:
        """How long it runs: the native `duration`, or openb's deletion_time − scheduled_time."""
        if self.duration is not None:
            return self.duration
        if self.deletion_time is not None and self.scheduled_time is not None:
            return max(0, self.deletion_time - self.scheduled_time)
        return None


# ------------------------------------------------------------------------------------------------ openb
def _csv_rows(text: str, source: str, required: Sequence[str]) -> list[tuple[int, dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    missing = [column for column in required if column not in header]
    if missing:
        raise TraceError(
            f"{source}: missing column(s) {', '.join(missing)}; an openb file needs {', '.join(required)} "
            f"(found: {', '.join(header) or 'no header'})"
        )
    return [(number, row) for number, row in enumerate(reader, start=2)]


def _int(row: dict[str, str], column: str, source: str, line: int, *, optional: bool = False) -> int | None:
    value = (row.get(column) or "").strip()
    if not value:
        if optional:
            return None
        raise TraceError(f"{source}:{line}: column {column} is empty")
    try:
        number = int(float(value))
    except ValueError:
        raise TraceError(f"{source}:{line}: column {column} must be a number, not {value!r}") from None
    if number < 0:
        raise TraceError(f"{source}:{line}: column {column} cannot be negative ({number})")
    return number


def read_openb_nodes(text: str, source: str = "nodes") -> list[NodeInfo]:
    nodes: list[NodeInfo] = []
    for line, row in _csv_rows(text, source, OPENB_NODE_COLUMNS):
        count = _int(row, "gpu", source, line) or 0
        model = (row.get("model") or "").strip()
        if count and not model:
            raise TraceError(f"{source}:{line}: a node with GPUs needs a model")
        nodes.append(
            NodeInfo(
                name=row["sn"].strip(),
                cpu_milli=_int(row, "cpu_milli", source, line) or 0,
                memory_mib=_int(row, "memory_mib", source, line) or 0,
                gpus=tuple(GpuInfo(index=i, model=model) for i in range(count)),
            )
        )
    if not nodes:
        raise TraceError(f"{source}: no nodes")
    return nodes


def read_openb_pods(text: str, source: str = "pods") -> list[TracePod]:
    pods: list[TracePod] = []
    for line, row in _csv_rows(text, source, OPENB_POD_COLUMNS):
        num_gpu = _int(row, "num_gpu", source, line) or 0
        gpu_milli = _int(row, "gpu_milli", source, line) or 0
        spec = (row.get("gpu_spec") or "").strip() or None
        cpu = _int(row, "cpu_milli", source, line) or 0
        memory = _int(row, "memory_mib", source, line) or 0
        if num_gpu == 0 or gpu_milli == 0:
            request = ResourceRequest(cpu_milli=cpu, memory_mib=memory)
        elif gpu_milli < 1000:
            if num_gpu != 1:
                raise TraceError(f"{source}:{line}: a GPU share (gpu_milli {gpu_milli}) must ask for one GPU")
            request = ResourceRequest(
                cpu_milli=cpu, memory_mib=memory, gpu_share_milli=gpu_milli, gpu_model=spec
            )
        elif gpu_milli == 1000:
            request = ResourceRequest(cpu_milli=cpu, memory_mib=memory, gpus=num_gpu, gpu_model=spec)
        else:
            raise TraceError(f"{source}:{line}: gpu_milli is per GPU and cannot exceed 1000 ({gpu_milli})")
        pods.append(
            TracePod(
                name=row["name"].strip(),
                request=request,
                creation_time=_int(row, "creation_time", source, line, optional=True),
                scheduled_time=_int(row, "scheduled_time", source, line, optional=True),
                deletion_time=_int(row, "deletion_time", source, line, optional=True),
            )
        )
    if not pods:
        raise TraceError(f"{source}: no pods")
    return pods


# ------------------------------------------------------------------------------------------------ native
class _NativeNode(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    count: int = Field(default=1, ge=1)
    cpu: str | float = Field(description="cores (8, 0.5) or millicores (500m)")
    memory: str | int = Field(description="16Gi, 512Mi; a bare number is MiB")
    gpus: int = Field(default=0, ge=0)
    gpu_model: str | None = None
    gpu_memory: str | int | None = None
    mig: bool = False

    @model_validator(mode="after")
    def _gpu_model_needed(self) -> _NativeNode:
        if self.gpus and not self.gpu_model:
            raise ValueError("a node with gpus needs gpu_model")
        return self


class _NativePod(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    count: int = Field(default=1, ge=1)
    cpu: str | float = 1
    memory: str | int = "1Gi"
    gpus: int = Field(default=0, ge=0)
    gpu_share: float | None = Field(default=None, gt=0, lt=1, description="fraction of one GPU")
    gpu_share_milli: int | None = Field(default=None, ge=1, le=999)
    mig: str | None = None
    gpu_model: str | None = None
    replicas: int = Field(default=1, ge=1)
    priority: int = 0
    workspace: str | None = None
    arrival: int | None = Field(default=None, ge=0, description="seconds from the start of the trace")
    duration: int | None = Field(default=None, ge=0, description="seconds it runs once started")


class _NativeTrace(BaseModel):
    model_config = ConfigDict(extra="forbid")

    nodes: list[_NativeNode] = []
    pods: list[_NativePod] = []


def _expand(name: str, count: int) -> list[str]:
    return [name] if count == 1 else [f"{name}-{i}" for i in range(count)]


def _parse_native(text: str, source: str) -> _NativeTrace:
    try:
        data: Any = json.loads(text) if source.endswith(".json") else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise TraceError(
            f"{source}: not valid {'JSON' if source.endswith('.json') else 'YAML'}: {exc}"
        ) from None
    if not isinstance(data, dict):
        raise TraceError(f"{source}: a native trace is a mapping with 'nodes' and/or 'pods' lists")
    try:
        return _NativeTrace.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        raise TraceError(f"{source}: {problems}") from None


def read_native_nodes(text: str, source: str = "nodes.yaml") -> list[NodeInfo]:
    trace = _parse_native(text, source)
    nodes: list[NodeInfo] = []
    try:
        for spec in trace.nodes:
            gpu_memory = parse_memory_mib(spec.gpu_memory) if spec.gpu_memory is not None else 0
            gpus = tuple(
                GpuInfo(index=i, model=spec.gpu_model or "", memory_mib=gpu_memory, mig_enabled=spec.mig)
                for i in range(spec.gpus)
            )
            cpu, memory = parse_cpu_milli(spec.cpu), parse_memory_mib(spec.memory)
            nodes.extend(NodeInfo(name, cpu, memory, gpus) for name in _expand(spec.name, spec.count))
    except ResourceParseError as exc:
        raise TraceError(f"{source}: {exc}") from None
    if not nodes:
        raise TraceError(f"{source}: no nodes (add a 'nodes' list)")
    return nodes


def read_native_pods(text: str, source: str = "pods.yaml") -> list[TracePod]:
    trace = _parse_native(text, source)
    pods: list[TracePod] = []
    for spec in trace.pods:
        share = spec.gpu_share_milli
        if spec.gpu_share is not None:
            share = max(1, min(999, round(spec.gpu_share * 1000)))
        try:
            request = ResourceRequest(
                cpu_milli=parse_cpu_milli(spec.cpu),
                memory_mib=parse_memory_mib(spec.memory),
                gpus=spec.gpus,
                gpu_model=spec.gpu_model,
                gpu_share_milli=share,
                mig_profile=spec.mig,
            )
            request.validate()
        except ResourceParseError as exc:
            raise TraceError(f"{source}: pod {spec.name}: {exc}") from None
        pods.extend(
            TracePod(
                name=name,
                request=request,
                replicas=spec.replicas,
                priority=spec.priority,
                workspace=spec.workspace,
                creation_time=spec.arrival,
                duration=spec.duration,
            )
            for name in _expand(spec.name, spec.count)
        )
    if not pods:
        raise TraceError(f"{source}: no pods (add a 'pods' list)")
    return pods


# ------------------------------------------------------------------------------------- by file name
def _is_native(source: str) -> bool:
    suffix = Path(source).suffix.lower()
    if suffix in (".yaml", ".yml", ".json"):
        return True
    if suffix == ".csv":
        return False
    raise TraceError(f"{source}: unknown trace format; use an openb .csv or a native .yaml/.yml/.json file")


def read_nodes(text: str, source: str) -> list[NodeInfo]:
    """Nodes from a file's text; the format follows the file name (`.csv` openb, else native)."""
    return read_native_nodes(text, source) if _is_native(source) else read_openb_nodes(text, source)


def read_pods(text: str, source: str) -> list[TracePod]:
    """Pods from a file's text; the format follows the file name (`.csv` openb, else native)."""
    return read_native_pods(text, source) if _is_native(source) else read_openb_pods(text, source)
