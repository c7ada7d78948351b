"""Inputs and outputs of the use cases (also the API's request and response bodies)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    field_validator,
    model_validator,
)

from astrago.domain.audit import AuditResult
from astrago.domain.enums import WorkloadKind, WorkloadStatus, WorkspaceRole
from astrago.domain.gpu_health import GpuHealthState
from astrago.domain.limits import MAX_ARGV_ITEMS, MAX_ENV_ENTRIES, exec_size_problem
from astrago.domain.resources import ResourceParseError, parse_cpu_milli, parse_memory_mib
from astrago.services.bounds import (
    MAX_OPTIONS,
    MAX_RUNTIME_S,
    NO_NUL,
    AbsolutePath,
    Amount,
    Argument,
    GpuModel,
    GpuModels,
    ImageRef,
    OptionName,
    ShortText,
    Text,
)

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
    """A request body: unknown fields are refused, and numbers and booleans must be sent as such (a
    string "1" or a 0 for false is refused, as the schema says, rather than silently converted)."""

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
    if seconds > MAX_RUNTIME_S:
        raise ValueError(f"max runtime must be at most {MAX_RUNTIME_S // 86400} days")
    return seconds


class ResourcesIn(Strict):
    cpu: StrictFloat | Amount | None = Field(
        None, description="cores per replica: 2, 0.5 or 500m [default: the node's share per GPU asked for]"
    )
    memory: StrictInt | Amount | None = Field(
        None, description="memory per replica: 512Mi, 16Gi (bare numbers are MiB) [default: as cpu]"
    )
    gpus: StrictInt = Field(0, ge=0, le=MAX_GPUS_PER_REPLICA, description="whole GPUs per replica")
    gpu_model: GpuModels | None = Field(None, description="required GPU model, 'A|B' for any of several")
    gpu_share: StrictFloat | None = Field(None, gt=0, lt=1, description="a fraction of one GPU, e.g. 0.25")
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
    workspace: Annotated[str, Field(pattern=NAME_PATTERN)]
    name: str | None = Field(None, pattern=NAME_PATTERN)
    kind: WorkloadKind = WorkloadKind.JOB
    command: Annotated[list[Argument], Field(max_length=MAX_ARGV_ITEMS)] | Argument = Field(
        default_factory=list
    )
    image: ImageRef | None = None
    env: dict[str, Argument] = Field(default_factory=dict, max_length=MAX_ENV_ENTRIES)
    working_dir: AbsolutePath | None = None
    code: str | None = Field(
        None,
        pattern=r"^[a-z0-9]{6,32}$",
        description="a code bundle id (POST /api/v1/code-bundles): the workload starts in an unpacked copy",
    )
    replicas: StrictInt = Field(1, ge=1, le=1024)
    resources: ResourcesIn = Field(default_factory=ResourcesIn)
    priority: Annotated[StrictInt, Field(ge=-1000, le=1000)] | Annotated[str, Field(max_length=16)] = Field(
        0, description="-1000..1000 or low | normal | high | urgent"
    )
    preemptible: StrictBool = True
    max_runtime: Annotated[StrictInt, Field(ge=1, le=MAX_RUNTIME_S)] | Amount | None = Field(
        None, description="seconds or 90m, 2h, 1d (at most 366 days)"
    )
    volumes: list[Annotated[str, Field(min_length=3, max_length=4300, pattern=NO_NUL)]] = Field(
        default_factory=list,
        max_length=32,
        description="volumes of the workspace to mount: NAME:/mount/path, NAME:/mount/path:ro",
    )
    ports: list[Annotated[StrictInt, Field(ge=1, le=65535)]] = Field(
        default_factory=list, max_length=64, description="ports to expose (interactive and service workloads)"
    )
    options: dict[OptionName, Text] = Field(
        default_factory=dict,
        max_length=MAX_OPTIONS,
        description="kind-specific backend options, e.g. framework: mpi, mpi_slots: '8', expose: nodeport",
    )

    @field_validator("env")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,255}", key):  # not `$`: it passes "A\n"
                raise ValueError(f"environment variable name {key!r} is not valid")
        return value

    @model_validator(mode="after")
    def _fits_one_exec(self) -> WorkloadSubmit:
        """What `execve` would refuse at launch is refused here, at submit."""
        problem = exec_size_problem(self.argv(), self.env)
        if problem:
            raise ValueError(problem)
        return self

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
    # as the backend recorded them (a run that ended while the server was down keeps its real end)
    started_at: datetime | None = None
    finished_at: datetime | None = None


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
    password: Annotated[Text, Field(min_length=MIN_PASSWORD_LENGTH)]
    admin: StrictBool = False


class UserOut(BaseModel):
    id: str
    username: str
    admin: bool
    active: bool
    source: str = "local"  # local | oidc (signs in through the IdP)
    created_at: datetime
    last_login_at: datetime | None = None
    workspaces: dict[str, WorkspaceRole] = Field(default_factory=dict)


class UserUpdate(Strict):
    active: bool | None = Field(None, description="false disables the account and ends its sessions")


class LoginIn(Strict):
    username: ShortText
    password: Text


class PasswordChange(Strict):
    current_password: Text
    new_password: Text


class TokenCreate(Strict):
    name: Annotated[ShortText, Field(min_length=1)] = "cli"
    expires_in_days: Annotated[StrictInt | None, Field(ge=1, le=3650)] = Field(
        None, description="default 90 days (server setting api_token_default_days)"
    )
    read_only: bool = Field(False, description="allow only GET, HEAD and OPTIONS requests")


class TokenOut(BaseModel):
    id: str
    name: str
    kind: str  # session | browser | api
    scope: str = "all"  # all | read
    token: str | None = None  # only when created: it is never shown again
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    username: str


class LogoutOut(BaseModel):
    logout_url: str | None = Field(None, description="open this to end the session at the IdP too")


class SsoConfigOut(BaseModel):
    enabled: bool
    issuer: str | None = None
    cli_client_id: str | None = None
    device_authorization_endpoint: str | None = None
    authorization_endpoint: str | None = None
    token_endpoint: str | None = None
    scopes: str | None = None


class SsoTokenIn(Strict):
    """IdP tokens a CLI obtained (device grant or loopback redirect), exchanged for an AstraGo session."""

    access_token: Annotated[str, Field(max_length=16384)]
    refresh_token: Annotated[str | None, Field(max_length=16384)] = None
    id_token: Annotated[str | None, Field(max_length=16384)] = None


class WorkspaceCreate(Strict):
    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    description: Annotated[Text, Field(max_length=512)] = ""


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
    username: Annotated[str, Field(pattern=USERNAME_PATTERN)]
    role: WorkspaceRole


class QuotaSet(Strict):
    """Amounts in user units: GPUs (may be fractional), cores, memory strings. `None` leaves a value as is;
    a limit of -1 removes the limit."""

    gpu_model: GpuModel | None = None
    gpu_guaranteed: StrictFloat | None = Field(None, ge=0, le=100_000)
    gpu_limit: StrictFloat | None = Field(None, ge=-1, le=100_000)
    cpu_guaranteed: StrictFloat | Amount | None = None
    cpu_limit: StrictFloat | Amount | None = None
    memory_guaranteed: StrictInt | Amount | None = None
    memory_limit: StrictInt | Amount | None = None
    storage_guaranteed: StrictInt | Amount | None = Field(None, description="bytes or e.g. 500Gi, 2T")
    storage_limit: StrictInt | Amount | None = Field(None, description="bytes or e.g. 1Ti; -1: no limit")


class QuotaEntryOut(BaseModel):
    resource: str  # gpu | gpu:<model> | cpu | memory | storage
    guaranteed: float
    limit: float | None
    used: float
    unit: str  # GPUs | cores | MiB | GiB


class QuotaOut(BaseModel):
    workspace: str
    entries: list[QuotaEntryOut]


class DeviceTenantOut(BaseModel):
    """A workload replica holding (part of) a GPU."""

    workload_id: str
    workload_name: str
    workspace: str
    replica: int
    gpu_milli: int  # 1000 for a whole GPU
    mig_profile: str | None


class CordonOut(BaseModel):
    reason: str | None
    cordoned_by: str | None
    cordoned_at: datetime


class GpuHealthOut(BaseModel):
    state: GpuHealthState
    cause: str | None = None
    since: datetime | None = None
    sticky: bool = Field(False, description="an Xid fence: it stays until an admin clears it (uncordon)")


class DeviceOut(BaseModel):
    index: int
    uuid: str | None
    model: str  # canonical, e.g. A100-80GB: the name requests and quotas use
    product: str | None = None  # as the driver or GPU feature discovery names it
    memory_mib: int
    simulated: bool
    healthy: bool
    allocated_milli: int
    mig_enabled: bool = False
    # the workloads on this GPU that the caller may see; others are counted in `other_tenants`
    tenants: list[DeviceTenantOut] = Field(default_factory=list)
    other_tenants: int = 0
    health: GpuHealthOut = Field(default_factory=lambda: GpuHealthOut(state=GpuHealthState.HEALTHY))
    cordon: CordonOut | None = Field(None, description="an admin took this GPU out of new placements")
    fenced: bool = Field(False, description="takes no new work: unhealthy, or cordoned (itself or its node)")


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
    gpus_held_by_others: int = Field(
        0, description="Whole GPUs held by work AstraGo did not start (pods of other tools on the node)."
    )
    cordon: CordonOut | None = Field(None, description="an admin took this node out of new placements")


class CordonIn(Strict):
    """Take a node, or one GPU of it, out of new placements. Work already there keeps running."""

    gpu: int | None = Field(None, ge=0, description="one GPU's index on the node; absent = the whole node")
    reason: str | None = Field(None, max_length=500)


class UncordonIn(Strict):
    """Put a node or GPU back into service. For a GPU this also clears a health fence (an Xid)."""

    gpu: int | None = Field(None, ge=0)


class UncordonOut(BaseModel):
    cleared: bool = Field(description="false when there was no cordon or fence to clear")


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
    workspace: str | None = None  # the workspace acted in, when there is one
    result: AuditResult
    detail: str | None
