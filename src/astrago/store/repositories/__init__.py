"""Repositories: the only place that builds queries. Each takes the caller's session (services own
transactions) and returns model objects."""

from astrago.store.repositories.audit import AuditRepository
from astrago.store.repositories.events import EventRepository
from astrago.store.repositories.logs import LogArchiveRepository
from astrago.store.repositories.nodes import NodeRepository
from astrago.store.repositories.quotas import QuotaRepository
from astrago.store.repositories.users import TokenRepository, UserRepository
from astrago.store.repositories.workloads import WorkloadPage, WorkloadRepository
from astrago.store.repositories.workspaces import WorkspaceRepository

__all__ = [
    "AuditRepository",
    "EventRepository",
    "LogArchiveRepository",
    "NodeRepository",
    "QuotaRepository",
    "TokenRepository",
    "UserRepository",
    "WorkloadPage",
    "WorkloadRepository",
    "WorkspaceRepository",
]
