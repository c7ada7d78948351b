from enum import StrEnum


class PlatformRole(StrEnum):
    ADMIN = "admin"
    USER = "user"


class WorkspaceRole(StrEnum):
    """Roles inside one workspace, strongest first."""

    MANAGER = "manager"
    MEMBER = "member"
    VIEWER = "viewer"

    @property
    def rank(self) -> int:
        return {"viewer": 0, "member": 1, "manager": 2}[self.value]

    def at_least(self, other: "WorkspaceRole") -> bool:
        return self.rank >= other.rank


class WorkloadKind(StrEnum):
    JOB = "job"
    DISTRIBUTED = "distributed"
    INTERACTIVE = "interactive"
    SERVICE = "service"


class WorkloadStatus(StrEnum):
    PENDING = "PENDING"
    ADMITTED = "ADMITTED"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    PREEMPTED = "PREEMPTED"


class ReplicaState(StrEnum):
    """Observed state of one replica as a backend reports it."""

    STARTING = "STARTING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    STOPPED = "STOPPED"  # ended because we asked it to (cancel, preemption, max runtime)
    LOST = "LOST"  # the backend can no longer find it (process vanished across a restart, node gone)


class OrphanPolicy(StrEnum):
    """What to do with backend objects whose workload the platform does not know."""

    REPORT = "report"  # list them and leave them alone
    DELETE = "delete"  # list them and delete them (their pods go with them)
