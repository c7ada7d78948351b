"""Inputs and outputs of the use cases (also the API's request and response bodies)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from astrago.domain.enums import WorkloadKind, WorkloadStatus, WorkspaceRole
from astrago.domain.resources import ResourceParseError, parse_cpu_milli, parse_memory_mib

NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
USERNAME_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}$"
PRIORITY_CLASSES = {"low": -100, "normal": 0, "high": 100, "urgent": 1000}
MAX_CPU_MILLI = 4096 * 1000  # 4,096 cores: far beyond any node, catches unit mistakes (e.g. "4000" for 4)
MAX_MEMORY_MIB = 64 * 1024 * 1024  # 64 TiB
MAX_GPUS_PER_REPLICA = 64
MIN_PASSWORD_LENGTH = 8
_DURATION_RE = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
_DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def parse_duration_s(value: int | str) -> int:
    if isinstance(value, int):
        seconds = value
    else:
        match = _DURATION_RE.match(value)
        if not match:
            raise ValueError(f"cannot read duration {value!r}; use seconds or e.g. 90m, 2h, 1d")
        seconds = int(match.group(1)) * _DURATION_UNITS[match.group(2)]
    if seconds <= 0:
        raise ValueError("max runtime must be positive")
    return seconds


class ResourcesIn(Strict):
    cpu: float | str | None = Field(
        None, description="cores per replica: 2, 0.5 or 500m [default: the node's share per GPU asked for]"
    )
    memory: int | str | None = Field(
        None, description="memory per replica: 512Mi, 16Gi (bare numbers are MiB) [default: as cpu]"
    )
    gpus: int = Field(0, ge=0, le=MAX_GPUS_PER_REPLICA, description="whole GPUs per replica")
    gpu_model: str | None = Field(None, description="required GPU model, 'A|B' for any of several")
    gpu_share: float | None = Field(None, gt=0, lt=1, description="a fraction of one GPU, e.g. 0.25")
    mig: str | None = Field(None, pattern=r"^\d+g\.\d+gb(\+me)?$", description="MIG profile, e.g. 1g.10gb")

    def cpu_milli(self) -> int | None:
        if self.cpu is None:
            return None
        milli = parse_cpu_milli(self.cpu)
        if milli <= 0 or milli > MAX_CPU_MILLI:
            raise ResourceParseError(
                f"cpu must be between 1m and {MAX_CPU_MILLI // 1000} cores, got {self.cpu}"
            )
        return milli

    def memory_mib(self) -> int | None:
        if self.memory is None:
            return None
        mib = parse_memory_mib(self.memory)
        if mib <= 0 or mib > MAX_MEMORY_MIB:
            raise ResourceParseError(f"memory must be between 1Mi and 64Ti, got {self.memory}")
        return mib


class WorkloadSubmit(Strict):
    workspace: str
    name: str | None = Field(None, pattern=NAME_PATTERN)
    kind: WorkloadKind = WorkloadKind.JOB
    command: list[str] | str = Field(default_factory=list)
    image: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    working_dir: str | None = None
    code: str | None = Field(
        None,
        pattern=r"^[a-z0-9]{6,32}$",
        description="a code bundle id (POST /api/v1/code-bundles): the workload starts in an unpacked copy",
    )
    replicas: int = Field(1, ge=1, le=1024)
    resources: ResourcesIn = Field(default_factory=ResourcesIn)
    priority: int | str = Field(0, description="-1000..1000 or low | normal | high | urgent")
    preemptible: bool = True
    max_runtime: int | str | None = Field(None, description="seconds or 90m, 2h, 1d")
    ports: list[Annotated[int, Field(ge=1, le=65535)]] = Field(
        default_factory=list, description="ports to expose (interactive and service workloads)"
    )
    volumes: list[Annotated[str, Field(pattern=r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?:/.*$")]] = Field(
        default_factory=list, description="volumes to mount as NAME:/mount/path"
    )
    options: dict[str, str] = Field(
        default_factory=dict,
        description="kind-specific backend options, e.g. framework: mpi, mpi_slots: '8', expose: nodeport",
    )

    @field_validator("env")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key):
                raise ValueError(f"environment variable name {key!r} is not valid")
        return value

    def priority_value(self) -> int:
        if isinstance(self.priority, str):
            if self.priority.lstrip("-").isdigit():
                return self._check_priority(int(self.priority))
            if self.priority not in PRIORITY_CLASSES:
                known = ", ".join(PRIORITY_CLASSES)
                raise ValueError(f"unknown priority class {self.priority!r}; use a number or one of {known}")
            return PRIORITY_CLASSES[self.priority]
        return self._check_priority(self.priority)

    @staticmethod
    def _check_priority(value: int) -> int:
        if not -1000 <= value <= 1000:
            raise ValueError(f"priority must be between -1000 and 1000, got {value}")
        return value

    def argv(self) -> list[str]:
        if isinstance(self.command, str):
            return ["/bin/sh", "-c", self.command] if self.command.strip() else []
        return list(self.command)


class ReplicaOut(BaseModel):
    index: int
    node: str
    gpus: list[int]
    gpu_uuids: list[str]
    gpu_milli: int
    mig_profile: str | None
    cpu_milli: int
    memory_mib: int
    state: str | None
    exit_code: int | None
    reason: str | None


class WorkloadOut(BaseModel):
    id: str
    name: str
    workspace: str
    kind: WorkloadKind
    status: WorkloadStatus
    reason: str | None
    pending_code: str | None
    queue_position: int | None
    priority: int
    preemptible: bool
    replicas: int
    spec: dict[str, Any]
    created_by: str | None
    created_at: datetime
    admitted_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    placements: list[ReplicaOut]


class WorkloadPageOut(BaseModel):
    items: list[WorkloadOut]
    total: int
    next_cursor: int | None


class EventOut(BaseModel):
    type: str
    reason: str
    created_at: datetime


class UserCreate(Strict):
    username: Annotated[str, Field(pattern=USERNAME_PATTERN)]
    password: Annotated[str, Field(min_length=MIN_PASSWORD_LENGTH, max_length=1024)]
    admin: bool = False


class UserOut(BaseModel):
    id: str
    username: str
    admin: bool
    active: bool
    created_at: datetime
    workspaces: dict[str, WorkspaceRole] = Field(default_factory=dict)


class LoginIn(Strict):
    username: str
    password: str


class TokenCreate(Strict):
    name: Annotated[str, Field(min_length=1, max_length=128)] = "cli"
    expires_in_days: Annotated[int | None, Field(ge=1, le=3650)] = None


class TokenOut(BaseModel):
    id: str
    name: str
    kind: str
    token: str | None = None  # only when created: it is never shown again
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    username: str


class WorkspaceCreate(Strict):
    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    description: Annotated[str, Field(max_length=512)] = ""


class MemberOut(BaseModel):
    username: str
    role: WorkspaceRole


class WorkspaceOut(BaseModel):
    id: str
    name: str
    description: str
    created_at: datetime
    my_role: WorkspaceRole | None = None
    members: list[MemberOut] = Field(default_factory=list)


class MemberSet(Strict):
    username: str
    role: WorkspaceRole


class QuotaSet(Strict):
    """Amounts in user units: GPUs (may be fractional), cores, memory strings. `None` leaves a value as is;
    a limit of -1 removes the limit."""

    gpu_model: str | None = None
    gpu_guaranteed: float | None = Field(None, ge=0, le=100_000)
    gpu_limit: float | None = Field(None, ge=-1, le=100_000)
    cpu_guaranteed: float | str | None = None
    cpu_limit: float | str | None = None
    memory_guaranteed: int | str | None = None
    memory_limit: int | str | None = None


class QuotaEntryOut(BaseModel):
    resource: str  # gpu | gpu:<model> | cpu | memory
    guaranteed: float
    limit: float | None
    used: float
    unit: str  # GPUs | cores | MiB


class QuotaOut(BaseModel):
    workspace: str
    entries: list[QuotaEntryOut]


class DeviceOut(BaseModel):
    index: int
    uuid: str | None
    model: str  # canonical, e.g. A100-80GB: the name requests and quotas use
    product: str | None = None  # as the driver or GPU feature discovery names it
    memory_mib: int
    simulated: bool
    healthy: bool
    allocated_milli: int


class NodeOut(BaseModel):
    name: str
    backend: str
    cpu_milli: int
    memory_mib: int
    schedulable: bool
    simulated: bool
    last_seen_at: datetime
    devices: list[DeviceOut]
    allocated_cpu_milli: int
    allocated_memory_mib: int


class WorkspaceDefaultsSet(Strict):
    """CPU and memory for workloads that do not ask for them; an absent field uses the platform's rule
    (the node's share per GPU; 0.5 cores and 1 GiB for CPU-only workloads)."""

    cpu: float | str | None = Field(None, description="cores for a CPU-only workload")
    memory: int | str | None = Field(None, description="memory for a CPU-only workload, e.g. 2Gi")
    cpu_per_gpu: float | str | None = Field(None, description="cores per GPU asked for")
    memory_per_gpu: int | str | None = Field(None, description="memory per GPU asked for, e.g. 32Gi")


class WorkspaceDefaultsOut(BaseModel):
    workspace: str
    cpu_milli: int | None
    memory_mib: int | None
    cpu_milli_per_gpu: int | None
    memory_mib_per_gpu: int | None


class CodeBundleOut(BaseModel):
    id: str
    size_bytes: int
    sha256: str
    files: int


class AuditOut(BaseModel):
    id: int
    created_at: datetime
    actor: str | None
    action: str
    target: str | None
    result: str
    detail: str | None
