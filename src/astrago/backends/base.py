"""The backend protocol: how the platform starts, stops and observes workloads on real resources.

The database holds desired state; a backend reports observed state; controllers reconcile the two.
Every method is idempotent, because a controller may call it again after a crash at any point:
`start` of a workload that already runs does nothing; `stop` of one that is gone does nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from astrago.domain.enums import ReplicaState, WorkloadKind


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


class BackendError(RuntimeError):
    """A backend could not do what was asked; the message says what to fix or install."""


class BackendUnavailable(BackendError):
    """The backend could not be reached or failed on its side (a 5xx answer, a timeout): the same call
    may well succeed later, so callers retry instead of giving up on the workload."""


@runtime_checkable
class Backend(Protocol):
    name: str

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

    def logs(self, workload_id: str, replica_index: int, follow: bool) -> AsyncIterator[bytes]:
        """The replica's output from the start; with `follow`, keeps yielding until the replica ends."""

    async def forget(self, workload_id: str) -> None:
        """Drop records of a finished workload that the platform no longer needs observed (keeps logs)."""
