"""Pure domain model: enums, value objects and the workload status machine.

Nothing here performs I/O or imports an outer layer (store, api, backends, services)."""

from astrago.domain.enums import PlatformRole, ReplicaState, WorkloadKind, WorkloadStatus, WorkspaceRole
from astrago.domain.resources import ResourceRequest
from astrago.domain.status import TERMINAL_STATUSES, InvalidTransition, can_transition, check_transition

__all__ = [
    "TERMINAL_STATUSES",
    "InvalidTransition",
    "PlatformRole",
    "ReplicaState",
    "ResourceRequest",
    "WorkloadKind",
    "WorkloadStatus",
    "WorkspaceRole",
    "can_transition",
    "check_transition",
]
