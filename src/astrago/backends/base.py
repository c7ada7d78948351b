"""The backend protocol: how the platform starts, stops and observes workloads on real resources.

The database holds desired state; a backend reports observed state; controllers reconcile the two.
Every method is idempotent, because a controller may call it again after a crash at any point:
`start` of a workload that already runs does nothing; `stop` of one that is gone does nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Protocol, runtime_checkable

from astrago.domain.enums import OrphanPolicy, ReplicaState, WorkloadKind


class Capability(StrEnum):
    """One thing a backend can do. A workload that needs a capability its backend lacks is refused at
    submission; nothing is accepted and then silently ignored."""

    COMMANDS = "commands"  # run a command without an image (on the host's own software)
    IMAGES = "images"  # run a container image
    PORTS = "ports"  # expose ports the platform can reach (interactive and service workloads)
    VOLUMES = "volumes"  # mount named volumes
    INTERACTIVE = "interactive"  # long-lived interactive sessions (JupyterLab by default)
    SERVICES = "services"  # replicated web services behind the gateway
    DISTRIBUTED = "distributed"  # multi-replica gangs with rendezvous variables
    MPI = "mpi"  # the MPI launcher (options framework=mpi)
    EXEC = "exec"  # run a command inside a running replica
    TTY = "tty"  # ... with a terminal (resize, Ctrl-C)
    ENDPOINTS = "endpoints"  # report where a workload's ports answer
    DURABLE_LOGS = "durable_logs"  # keeps finished replicas' logs (else the controller archives them)
    ORPHAN_CLEANUP = "orphan_cleanup"  # find and delete objects of workloads the database does not know
    NODE_PORTS = "node_ports"  # expose a service on every node (options expose=nodeport)
    ROLLING_UPDATE = "rolling_update"  # replace a service's replicas, new ones ready before old ones drain


@dataclass(frozen=True, slots=True)
class WorkloadNeeds:
    """What a submitted workload asks of the backend, independent of any backend."""

    kind: WorkloadKind
    has_command: bool
    image: str | None = None
    ports: int = 0
    volumes: int = 0
    options: tuple[tuple[str, str], ...] = ()
    replicas: int = 1

    def required(self) -> list[Capability]:
        """The capabilities this workload needs, in the order a user reads them."""
        needed: list[Capability] = []
        if self.image:
            needed.append(Capability.IMAGES)
        elif self.has_command or self.kind is not WorkloadKind.INTERACTIVE:
            needed.append(Capability.COMMANDS)
        kind_capability = {
            WorkloadKind.INTERACTIVE: Capability.INTERACTIVE,
            WorkloadKind.SERVICE: Capability.SERVICES,
            WorkloadKind.DISTRIBUTED: Capability.DISTRIBUTED,
        }.get(self.kind)
        if kind_capability is not None:
            needed.append(kind_capability)
        if self.ports:
            needed.append(Capability.PORTS)
        if self.volumes:
            needed.append(Capability.VOLUMES)
        options = dict(self.options)
        if options.get("framework") == "mpi":
            needed.append(Capability.MPI)
        if options.get("expose") == "nodeport":
            needed.append(Capability.NODE_PORTS)
        return needed


@dataclass(frozen=True, slots=True)
class BackendCapabilities:
    """What one backend can do, and which kind-specific `options` keys it reads (others are refused)."""

    backend: str
    supported: frozenset[Capability]
    options: frozenset[str] = frozenset()

    def supports(self, capability: Capability) -> bool:
        return capability in self.supported

    def missing(self, needs: WorkloadNeeds) -> list[Capability]:
        return [capability for capability in needs.required() if capability not in self.supported]

    def unknown_options(self, keys: Collection[str]) -> list[str]:
        return sorted(key for key in keys if key not in self.options)


NO_BACKEND = BackendCapabilities(backend="none", supported=frozenset())


class CapabilityMissing(RuntimeError):
    """An optional operation was called on a backend that lacks it; callers check `capabilities` first."""

    def __init__(self, backend: str, capability: Capability) -> None:
        super().__init__(f"the {backend} backend cannot {capability.value.replace('_', ' ')}")
        self.backend = backend
        self.capability = capability


@dataclass(frozen=True, slots=True)
class DeviceInventory:
    index: int
    model: str
    memory_mib: int
    uuid: str | None = None
    simulated: bool = False
    healthy: bool = True
    mig_enabled: bool = False


@dataclass(frozen=True, slots=True)
class NodeInventory:
    name: str
    cpu_milli: int
    memory_mib: int
    devices: tuple[DeviceInventory, ...] = ()
    schedulable: bool = True
    simulated: bool = False
    labels: tuple[tuple[str, str], ...] = ()
    ready: bool = True  # the node reports Ready (a cluster node can be schedulable yet not ready)
    taints: tuple[str, ...] = ()  # "key=value:Effect", as `kubectl describe node` prints them
    # allocatable GPU-type resources by name, e.g. ("nvidia.com/gpu", 4), ("nvidia.com/mig-1g.10gb", 7)
    gpu_resources: tuple[tuple[str, int], ...] = ()
    # Whole GPUs that work the platform did not start holds (pods of other tools on a Kubernetes node).
    # Which devices is not known (the device plugin picks), only how many; CPU and memory they hold are
    # left out of cpu_milli and memory_mib already.
    gpus_held_by_others: int = 0


@dataclass(frozen=True, slots=True)
class ReplicaLaunch:
    index: int
    node: str
    cpu_milli: int
    memory_mib: int
    gpu_indices: tuple[int, ...] = ()
    gpu_uuids: tuple[str, ...] = ()  # same order as gpu_indices, when the backend knows them
    gpu_milli: int = 0
    mig_profile: str | None = None


@dataclass(frozen=True, slots=True)
class VolumeMount:
    """One volume for one workload: its files at `host_path` on the server's disk (the local backend),
    the same files at `share_subpath` of the shared volumes claim (Kubernetes), shown at `mount_path`.
    A relative `mount_path` is relative to the working directory."""

    name: str
    slug: str
    host_path: str
    share_subpath: str
    mount_path: str
    read_only: bool = False


@dataclass(frozen=True, slots=True)
class LaunchSpec:
    workload_id: str
    name: str
    workspace: str
    kind: WorkloadKind
    replicas: tuple[ReplicaLaunch, ...]
    command: tuple[str, ...] = ()
    image: str | None = None
    env: tuple[tuple[str, str], ...] = ()
    working_dir: str | None = None
    code_bundle: str | None = None  # an uploaded code bundle to unpack and start in (instead of working_dir)
    max_runtime_s: int | None = None
    ports: tuple[int, ...] = ()
    volumes: tuple[VolumeMount, ...] = ()
    extra: dict[str, str] = field(default_factory=dict)  # kind-specific options (e.g. mpi slots)
    revision: int = 0  # a service's spec revision: a rolling update starts the next one


@dataclass(frozen=True, slots=True)
class ReplicaObservation:
    workload_id: str
    replica_index: int
    state: ReplicaState
    exit_code: int | None = None
    reason: str | None = None
    node: str | None = None
    started_at: float | None = None
    finished_at: float | None = None


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where one port of a workload answers, as the gateway reaches it."""

    port: int  # the port the workload asked for (`--port`)
    host: str
    target_port: int  # where it listens on `host` (the local backend allocates one per replica)
    replica_index: int | None = None  # None: a Service that balances over every ready replica
    ready: bool = True
    node_port: int | None = None  # set when the service is exposed on every node (options expose=nodeport)
    keeps_prefix: bool = False  # the app serves under its gateway path itself (JupyterLab's base_url)
    # The Authorization header the gateway presents upstream (a notebook's own token); never shown to users.
    upstream_authorization: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Orphan:
    """Something a backend runs or keeps for a workload the platform no longer knows."""

    workload_id: str
    kind: str
    name: str
    deleted: bool = False


class ExecStream(IntEnum):
    """The channels of an exec session (numbered as Kubernetes numbers them)."""

    STDIN = 0
    STDOUT = 1
    STDERR = 2


@dataclass(frozen=True, slots=True)
class ExecRequest:
    argv: tuple[str, ...]
    tty: bool = False
    rows: int = 24
    cols: int = 80


class ExecSession(Protocol):
    """A command running inside a replica (Capability.EXEC; with a terminal, Capability.TTY). It ends when
    the command ends or the replica does."""

    def output(self) -> AsyncIterator[tuple[ExecStream, bytes]]:
        """stdout and stderr (with a terminal: one stream, STDOUT) until the command's end."""

    async def send(self, data: bytes) -> None: ...

    async def end_input(self) -> None: ...

    async def resize(self, rows: int, cols: int) -> None: ...

    async def wait(self) -> int:
        """The exit code (128 + N for a command killed by signal N)."""

    async def kill(self) -> None: ...


class BackendError(RuntimeError):
    """A backend could not do what was asked; the message says what to fix or install."""


class BackendUnavailable(BackendError):
    """The backend could not be reached or failed on its side (a 5xx answer, a timeout): the same call
    may well succeed later, so callers retry instead of giving up on the workload."""


@runtime_checkable
class Backend(Protocol):
    name: str
    capabilities: BackendCapabilities

    async def open(self) -> None:
        """Connect, check permissions and prerequisites, load durable records. Raise BackendError clearly."""

    async def close(self) -> None: ...

    async def inventory(self) -> list[NodeInventory]: ...

    async def start(self, spec: LaunchSpec) -> None:
        """Launch every replica of the workload. Idempotent: replicas that already exist are left alone."""

    async def stop(self, workload_id: str, grace_s: float, reason: str) -> None:
        """Ask every replica to stop (SIGTERM or delete), escalate after `grace_s`. Idempotent."""

    async def observe(self) -> list[ReplicaObservation]:
        """The current observed state of every replica this backend manages (used to reconcile/adopt)."""

    def watch(self) -> AsyncIterator[ReplicaObservation]:
        """Changes as they happen, for prompt reaction; `observe` remains the source of truth."""

    def logs(
        self, workload_id: str, replica_index: int, follow: bool, offset: int = 0
    ) -> AsyncIterator[bytes]:
        """The replica's output from byte `offset` on; with `follow`, keeps yielding until it ends."""

    async def forget(self, workload_id: str) -> None:
        """Drop records of a finished workload that the platform no longer needs observed (keeps logs)."""

    async def endpoints(self, workload_id: str) -> list[Endpoint]:
        """Where the workload's ports answer (Capability.ENDPOINTS); [] while nothing listens yet."""

    async def reconcile_orphans(
        self, known_workload_ids: Collection[str], policy: OrphanPolicy = OrphanPolicy.REPORT
    ) -> list[Orphan]:
        """What the backend runs for workloads the database does not know (Capability.ORPHAN_CLEANUP)."""

    async def open_exec(self, workload_id: str, replica_index: int, request: ExecRequest) -> ExecSession:
        """Start a command in a running replica's environment (Capability.EXEC, TTY for a terminal)."""

    async def roll(self, spec: LaunchSpec) -> None:
        """Bring a running service to `spec.revision` (Capability.ROLLING_UPDATE): new replicas ready
        before the old ones drain. Idempotent; returns at once, the roll goes on in the background."""


def require(capabilities: BackendCapabilities, capability: Capability) -> None:
    """Raise CapabilityMissing unless the backend has `capability` (for optional operations)."""
    if not capabilities.supports(capability):
        raise CapabilityMissing(capabilities.backend, capability)
