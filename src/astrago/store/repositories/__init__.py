"""Repositories: the only place that builds queries. Each takes the caller's session (services own
transactions) and returns model objects."""

from astrago.store.repositories.allocations import AllocationRepository
from astrago.store.repositories.audit import AuditRepository
from astrago.store.repositories.changes import ChangeRepository
from astrago.store.repositories.events import EventRepository
from astrago.store.repositories.fences import FenceRepository
from astrago.store.repositories.health import HealthRepository
from astrago.store.repositories.logs import LogArchiveRepository
from astrago.store.repositories.nodes import NodeRepository
from astrago.store.repositories.quotas import QuotaRepository
from astrago.store.repositories.users import IdentityRepository, TokenRepository, UserRepository
from astrago.store.repositories.volumes import UploadRepository, VolumeRepository
from astrago.store.repositories.workloads import LiveRow, ReplicaRow, WorkloadPage, WorkloadRepository
from astrago.store.repositories.workspaces import WorkspaceRepository

__all__ = [
    "AllocationRepository",
    "AuditRepository",
    "ChangeRepository",
    "EventRepository",
    "FenceRepository",
    "HealthRepository",
    "IdentityRepository",
    "LiveRow",
    "LogArchiveRepository",
    "NodeRepository",
    "QuotaRepository",
    "ReplicaRow",
    "TokenRepository",
    "UploadRepository",
    "UserRepository",
    "VolumeRepository",
    "WorkloadPage",
    "WorkloadRepository",
    "WorkspaceRepository",
]
