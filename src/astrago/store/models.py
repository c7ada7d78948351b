"""SQLAlchemy models: the platform's desired state and its history.

Portable across SQLite, PostgreSQL and MariaDB: JSON columns for specs, timezone-aware timestamps stored
as UTC (with microseconds on MariaDB too), string ids generated in Python (so ids never collide with
objects left in a cluster by an older database), and an integer `seq` where queue order must not depend
on clocks."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator, TypeEngine

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """Stores UTC, always returns aware datetimes (SQLite and MariaDB drop the zone otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        # MariaDB/MySQL DATETIME keeps whole seconds unless asked for microseconds (fsp 6).
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    # local | oidc: an oidc user has no password here; the IdP owns their admin flag and IdP-given roles
    source: Mapped[str] = mapped_column(String(16), default="local", server_default="local")
    oidc_subject: Mapped[str | None] = mapped_column(String(255), unique=True)  # "<issuer> <sub>"
    last_login_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))  # session | api
    token_hash: Mapped[str] = mapped_column(
        String(64), unique=True
    )  # sha256 hex; the token itself is never stored
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    scope: Mapped[str] = mapped_column(String(16), default="all", server_default="all")  # all | read

    user: Mapped[User] = relationship(lazy="joined")


class IdpSession(Base):
    """The IdP's tokens behind one AstraGo session (browser or `login --sso`): kept on the server only, to
    re-check the user at the IdP (refresh) and to end the IdP session at logout."""

    __tablename__ = "idp_sessions"

    token_id: Mapped[str] = mapped_column(ForeignKey("api_tokens.id", ondelete="CASCADE"), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(255))  # the IdP client the refresh token belongs to
    id_token: Mapped[str | None] = mapped_column(Text)
    refresh_token: Mapped[str | None] = mapped_column(Text)
    checked_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class PendingLogin(Base):
    """One browser sign-in between the redirect to the IdP and its callback (state, nonce, PKCE)."""

    __tablename__ = "pending_logins"

    state: Mapped[str] = mapped_column(String(64), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64))
    code_verifier: Mapped[str] = mapped_column(String(128))
    return_to: Mapped[str] = mapped_column(String(1024))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)


class Workspace(Base):
    __tablename__ = "workspaces"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(String(512), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    # CPU and memory for workloads that do not ask (astrago.domain.defaults.WorkloadDefaults fields)
    defaults: Mapped[dict[str, int] | None] = mapped_column(JSON, nullable=True)


class Membership(Base):
    __tablename__ = "memberships"

    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    # local | idp: roles the IdP gives are re-synced at every login; roles given here are left alone
    source: Mapped[str] = mapped_column(String(16), default="local", server_default="local")

    user: Mapped[User] = relationship(lazy="joined")


class QuotaEntry(Base):
    """One resource of a workspace's quota: `gpu`, `gpu:<model>`, `cpu` or `memory`.

    Amounts in the scheduler's units: milli-GPU, millicores, MiB. A null limit means no limit."""

    __tablename__ = "quota_entries"

    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    resource: Mapped[str] = mapped_column(String(96), primary_key=True)
    guaranteed: Mapped[int] = mapped_column(BigInteger, default=0)
    limit: Mapped[int | None] = mapped_column(BigInteger)


class Volume(Base):
    """A workspace's directory of files (dataset, model, code or scratch), mounted into workloads.

    Its files live under `<volumes dir>/<workspace id>/<volume id>`; bytes and files used are measured
    there, never stored. `name` is for people (any language); `slug` is its ASCII form (env names)."""

    __tablename__ = "volumes"
    __table_args__ = (
        UniqueConstraint("workspace_id", "name", name="uq_volumes_workspace_name"),
        UniqueConstraint("workspace_id", "slug", name="uq_volumes_workspace_slug"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="RESTRICT"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    slug: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    size_limit: Mapped[int | None] = mapped_column(BigInteger)  # bytes; None: only the workspace's limit
    description: Mapped[str] = mapped_column(String(512), default="")
    created_by: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    workspace: Mapped[Workspace] = relationship(lazy="joined")


class Upload(Base):
    """A resumable (TUS) upload into a volume. Its bytes so far are the size of its part file, fsync'd
    before each offset is acknowledged; the row holds what the part file cannot: where the finished file
    goes, its declared length (reserved against the quotas) and when it expires."""

    __tablename__ = "uploads"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    volume_id: Mapped[str] = mapped_column(ForeignKey("volumes.id", ondelete="CASCADE"), index=True)
    path: Mapped[str] = mapped_column(Text)  # inside the volume, normalised (a/b/c)
    length: Mapped[int] = mapped_column(BigInteger)
    metadata_header: Mapped[str] = mapped_column(Text, default="")  # Upload-Metadata as received
    created_by: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    # set once the file is in place; kept until it expires, so a client that crashed after sending the
    # last byte still learns that the upload is complete
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    volume: Mapped[Volume] = relationship(lazy="joined")


class Workload(Base):
    __tablename__ = "workloads"
    __table_args__ = (Index("ix_workloads_status_seq", "status", "seq"),)

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(32), unique=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="RESTRICT"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)  # why pending / why it ended
    pending_code: Mapped[str | None] = mapped_column(String(32))
    queue_position: Mapped[int | None] = mapped_column(Integer)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    preemptible: Mapped[bool] = mapped_column(Boolean, default=True)
    replicas: Mapped[int] = mapped_column(Integer, default=1)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_by: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)
    admitted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    admitted_seq: Mapped[int | None] = mapped_column(Integer)
    launched: Mapped[bool] = mapped_column(Boolean, default=False)  # backend.start has returned
    stop_requested: Mapped[str | None] = mapped_column(String(16))  # cancel | preempt
    stop_reason: Mapped[str | None] = mapped_column(Text)

    workspace: Mapped[Workspace] = relationship(lazy="joined")
    creator: Mapped[User | None] = relationship(lazy="joined")
    replica_rows: Mapped[list[Replica]] = relationship(
        lazy="selectin", order_by="Replica.index", cascade="all, delete-orphan", back_populates="workload"
    )


class Replica(Base):
    __tablename__ = "replicas"

    workload_id: Mapped[str] = mapped_column(ForeignKey("workloads.id", ondelete="CASCADE"), primary_key=True)
    index: Mapped[int] = mapped_column(Integer, primary_key=True)
    node: Mapped[str] = mapped_column(String(253))
    cpu_milli: Mapped[int] = mapped_column(Integer)
    memory_mib: Mapped[int] = mapped_column(Integer)
    gpu_indices: Mapped[list[int]] = mapped_column(JSON, default=list)
    gpu_uuids: Mapped[list[str]] = mapped_column(JSON, default=list)
    gpu_milli: Mapped[int] = mapped_column(Integer, default=0)
    mig_profile: Mapped[str | None] = mapped_column(String(32))
    mig_start: Mapped[int | None] = mapped_column(Integer)
    state: Mapped[str | None] = mapped_column(String(16))  # observed ReplicaState
    exit_code: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    workload: Mapped[Workload] = relationship(back_populates="replica_rows")


class Node(Base):
    __tablename__ = "nodes"

    name: Mapped[str] = mapped_column(String(253), primary_key=True)
    backend: Mapped[str] = mapped_column(String(16))
    cpu_milli: Mapped[int] = mapped_column(Integer)
    memory_mib: Mapped[int] = mapped_column(BigInteger)
    schedulable: Mapped[bool] = mapped_column(Boolean, default=True)
    simulated: Mapped[bool] = mapped_column(Boolean, default=False)
    labels: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    # whole GPUs held by work the platform did not start (which devices is unknown, only how many)
    gpus_held_by_others: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    devices: Mapped[list[Device]] = relationship(
        lazy="selectin", order_by="Device.index", cascade="all, delete-orphan"
    )


class Device(Base):
    __tablename__ = "devices"

    node_name: Mapped[str] = mapped_column(ForeignKey("nodes.name", ondelete="CASCADE"), primary_key=True)
    index: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str | None] = mapped_column(String(96))
    model: Mapped[str] = mapped_column(String(96))  # canonical (astrago.domain.gpu_models)
    product: Mapped[str | None] = mapped_column(String(128), nullable=True)  # as the driver or GFD names it
    memory_mib: Mapped[int] = mapped_column(Integer)
    simulated: Mapped[bool] = mapped_column(Boolean, default=False)
    healthy: Mapped[bool] = mapped_column(Boolean, default=True)
    mig_enabled: Mapped[bool] = mapped_column(Boolean, default=False)


class GpuHealthRecord(Base):
    """A GPU's recorded health when it is not healthy (no row = healthy). Keyed by node and GPU index, not
    by the node's device row, which the inventory replaces: a fence outlives a GPU that went away a while."""

    __tablename__ = "gpu_health"

    node: Mapped[str] = mapped_column(String(253), primary_key=True)
    gpu_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    state: Mapped[str] = mapped_column(String(16))  # GpuHealthState: degraded | unhealthy
    cause: Mapped[str] = mapped_column(Text)
    sticky: Mapped[bool] = mapped_column(Boolean, default=False)  # an Xid fence: cleared by an admin only
    since: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class NodeCordon(Base):
    """An admin took a node out of new placements (`astrago node cordon NODE`)."""

    __tablename__ = "node_cordons"

    node: Mapped[str] = mapped_column(String(253), primary_key=True)
    reason: Mapped[str | None] = mapped_column(Text)
    cordoned_by: Mapped[str | None] = mapped_column(String(128))
    cordoned_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class GpuCordon(Base):
    """An admin took one GPU out of new placements (`astrago node cordon NODE --gpu INDEX`)."""

    __tablename__ = "gpu_cordons"

    node: Mapped[str] = mapped_column(String(253), primary_key=True)
    gpu_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    reason: Mapped[str | None] = mapped_column(Text)
    cordoned_by: Mapped[str | None] = mapped_column(String(128))
    cordoned_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class Event(Base):
    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workload_id: Mapped[str | None] = mapped_column(
        ForeignKey("workloads.id", ondelete="CASCADE"), index=True
    )
    type: Mapped[str] = mapped_column(String(32))  # e.g. Submitted, Admitted, Started, Preempted, Finished
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class Change(Base):
    """One entry of the change feed that live clients follow (`GET /api/v1/events/stream`).

    Written in the same transaction as the change it announces, so its id is a durable, ordered cursor:
    a client that reconnects, even to a restarted server, resumes after the last id it saw."""

    __tablename__ = "changes"
    # SQLite would otherwise reuse the ids of pruned rows, and a resuming client would skip changes.
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))  # a ChangeKind: workload | node
    subject: Mapped[str] = mapped_column(String(253))  # the workload id or the node name
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)


AUDIT_WORKSPACE_LENGTH = 64  # as long as a workspace name


class AuditRecord(Base):
    __tablename__ = "audit_records"
    # The audit search filters on one of these and pages newest first by id: each (column, id) index
    # serves both the filter and the order.
    __table_args__ = (
        Index("ix_audit_records_actor_id", "actor", "id"),
        Index("ix_audit_records_action_id", "action", "id"),
        Index("ix_audit_records_target_id", "target", "id"),
        Index("ix_audit_records_workspace_id", "workspace", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    actor: Mapped[str | None] = mapped_column(String(64))  # username; None for anonymous calls
    action: Mapped[str] = mapped_column(String(64))  # e.g. workload.submit
    target: Mapped[str | None] = mapped_column(String(256))
    # the workspace acted in, when there is one
    workspace: Mapped[str | None] = mapped_column(String(AUDIT_WORKSPACE_LENGTH))
    result: Mapped[str] = mapped_column(String(16))  # an AuditResult
    detail: Mapped[str | None] = mapped_column(Text)


class Lease(Base):
    """A named lease held by one server process (the active controllers' leader)."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)


LOG_ARCHIVE_MAX_BYTES = 2**32 - 1  # LONGBLOB on MariaDB (a plain BLOB stops at 64 KiB)


class LogArchive(Base):
    """A finished replica's log, kept in the database when the backend does not keep it (Kubernetes
    deletes a job's pods, and with them its logs): every server process reads the same copy."""

    __tablename__ = "log_archives"

    workload_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("workloads.id", ondelete="CASCADE"), primary_key=True
    )
    replica_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    content: Mapped[bytes] = mapped_column(LargeBinary(LOG_ARCHIVE_MAX_BYTES))
    archived_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)


class AllocationInterval(Base):
    """The usage ledger: one replica run's hold on resources, from its start to its end (open while it
    runs). Replica rows go when a workload is requeued; these stay. Names are copied in (workspace, user,
    GPU model) so that history reads the same after a rename or a deletion, hence no foreign keys."""

    __tablename__ = "allocation_intervals"
    __table_args__ = (
        # one run of one replica starts once: an interval can never be recorded twice
        UniqueConstraint("workload_id", "replica_index", "started_at", name="uq_allocation_intervals_run"),
        Index("ix_allocation_intervals_window", "started_at", "ended_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workload_id: Mapped[str] = mapped_column(String(32), index=True)
    workload_name: Mapped[str] = mapped_column(String(128))
    replica_index: Mapped[int] = mapped_column(Integer)
    workspace_id: Mapped[str] = mapped_column(String(32), index=True)
    workspace: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str | None] = mapped_column(String(32))
    username: Mapped[str | None] = mapped_column(String(64))
    node: Mapped[str] = mapped_column(String(253))
    gpu_model: Mapped[str | None] = mapped_column(String(96))  # None: no GPU
    gpu_count: Mapped[int] = mapped_column(Integer, default=0)  # physical GPUs touched
    gpu_milli: Mapped[int] = mapped_column(Integer, default=0)  # GPU amount in thousandths of one GPU
    mig_profile: Mapped[str | None] = mapped_column(String(32))
    cpu_milli: Mapped[int] = mapped_column(Integer)
    memory_mib: Mapped[int] = mapped_column(BigInteger)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime, index=True)


class AllocationUsageHour(Base):
    """The usage ledger's used GPU time: what the telemetry measured of one allocation interval in one UTC
    hour, accumulated in the transaction that writes the samples (so a sample is counted exactly once and
    outlives the samples' retention). Sums over the replica's GPU rows whose utilisation is known: seconds
    (`measured_s`) and utilisation percent × seconds; rows without a utilisation (MIG) add nothing, so an
    interval with no row here has an unknown, never a zero, use."""

    __tablename__ = "allocation_usage_hours"
    __table_args__ = (Index("ix_allocation_usage_hours_epoch_hour", "epoch_hour"),)

    interval_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("allocation_intervals.id", ondelete="CASCADE"), primary_key=True
    )
    epoch_hour: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)  # UTC hours
    measured_s: Mapped[float] = mapped_column(Float)
    util_percent_seconds: Mapped[float] = mapped_column(Float)


class WorkloadGpuSample(Base):
    """What one replica did to one GPU over one sample period (telemetry; astrago.monitor).

    Rows of the two resolutions never overlap: a 5-minute row (`resolution_s` 300) replaces the 10-second
    rows of its period when those expire, so any sum or mean over a time range reads both, weighted by
    `resolution_s`. `gpu_util_percent` is None where the GPU cannot attribute utilisation to a process (MIG)
    — never 0 for "unknown". The peak columns are set on rolled-up rows only (a raw row is its own peak)."""

    __tablename__ = "workload_gpu_samples"
    __table_args__ = (Index("ix_workload_gpu_samples_workload_at", "workload_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workload_id: Mapped[str] = mapped_column(String(32), ForeignKey("workloads.id", ondelete="CASCADE"))
    replica_index: Mapped[int] = mapped_column(Integer)
    node: Mapped[str] = mapped_column(String(253))
    gpu_index: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)  # the start of the sample period
    resolution_s: Mapped[int] = mapped_column(Integer)  # 10 (raw, setting) or 300 (rolled up)
    sampled_s: Mapped[int] = mapped_column(Integer)  # seconds the row covers (a partial 5-min bucket: less)
    gpu_util_percent: Mapped[float | None] = mapped_column(Float)
    memory_used_bytes: Mapped[int | None] = mapped_column(BigInteger)
    gpu_util_peak_percent: Mapped[float | None] = mapped_column(Float)
    memory_peak_bytes: Mapped[int | None] = mapped_column(BigInteger)
    source: Mapped[str] = mapped_column(String(16))  # a SampleSource: nvml, smi, replay, scripted, prometheus


class GpuDeviceSample(Base):
    """One GPU's own reading over one sample period (all its processes, the platform's or not), with the
    health fields its source gives. The node page's per-GPU charts and `gpu_states` read these."""

    __tablename__ = "gpu_device_samples"
    __table_args__ = (Index("ix_gpu_device_samples_node_gpu_at", "node", "gpu_index", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    node: Mapped[str] = mapped_column(String(253))
    gpu_index: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    resolution_s: Mapped[int] = mapped_column(Integer)
    sampled_s: Mapped[int] = mapped_column(Integer)
    gpu_util_percent: Mapped[float | None] = mapped_column(Float)
    memory_used_bytes: Mapped[int | None] = mapped_column(BigInteger)
    memory_total_bytes: Mapped[int | None] = mapped_column(BigInteger)
    temperature_celsius: Mapped[float | None] = mapped_column(Float)
    power_watts: Mapped[float | None] = mapped_column(Float)
    healthy: Mapped[bool | None] = mapped_column(Boolean)
    mig_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    gpu_util_peak_percent: Mapped[float | None] = mapped_column(Float)
    memory_peak_bytes: Mapped[int | None] = mapped_column(BigInteger)
    source: Mapped[str] = mapped_column(String(16))


# -- alerts and idle reclaim (astrago.monitor.alerts) ---------------------------------------------------


class AlertChannel(Base):
    """Where notifications go: a webhook (JSON, HMAC-signed), an email address (SMTP) or an Apprise URL.

    `secret` (the webhook's signing key) and `target` of an Apprise URL (which carries the service's
    token) are never returned by the API."""

    __tablename__ = "alert_channels"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # a ChannelKind
    target: Mapped[str] = mapped_column(Text)  # the URL, address or Apprise URL
    secret: Mapped[str | None] = mapped_column(String(256))
    created_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class AlertSubscription(Base):
    """Which alerts a channel receives: those of one workspace, of one user's workloads, or all of them;
    optionally only some rules, and at least some severity."""

    __tablename__ = "alert_subscriptions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    channel_id: Mapped[str] = mapped_column(ForeignKey("alert_channels.id", ondelete="CASCADE"), index=True)
    workspace_id: Mapped[str | None] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    rules: Mapped[list[str] | None] = mapped_column(JSON)  # None: every rule
    min_severity: Mapped[str] = mapped_column(String(16), default="info")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    channel: Mapped[AlertChannel] = relationship(lazy="joined")


class Alert(Base):
    """One occurrence of a condition, from firing to resolved. At most one is open per rule and key:
    `open_key` is set while it fires and cleared when it resolves, under a unique constraint, so two
    evaluators racing to raise the same alert cannot both open one."""

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_rule_key", "rule", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    rule: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(253))
    open_key: Mapped[str | None] = mapped_column(String(320), unique=True)
    severity: Mapped[str] = mapped_column(String(16))
    summary: Mapped[str] = mapped_column(Text)
    resolution: Mapped[str | None] = mapped_column(Text)
    workspace_id: Mapped[str | None] = mapped_column(
        ForeignKey("workspaces.id", ondelete="SET NULL"), index=True
    )
    workload_id: Mapped[str | None] = mapped_column(String(32), index=True)
    user_id: Mapped[str | None] = mapped_column(String(32))  # whose workload it concerns
    node: Mapped[str | None] = mapped_column(String(253))
    opened_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class AlertDelivery(Base):
    """One notification of one alert (fired or resolved) to one channel, retried with backoff."""

    __tablename__ = "alert_deliveries"
    __table_args__ = (Index("ix_alert_deliveries_status_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    channel_id: Mapped[str] = mapped_column(ForeignKey("alert_channels.id", ondelete="CASCADE"), index=True)
    event: Mapped[str] = mapped_column(String(16))  # fired | resolved
    status: Mapped[str] = mapped_column(String(16))  # pending | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    channel: Mapped[AlertChannel] = relationship(lazy="joined")


class AlertRuleSetting(Base):
    """An administrator's thresholds for one built-in rule (rules without a row use the settings)."""

    __tablename__ = "alert_rule_settings"

    rule: Mapped[str] = mapped_column(String(64), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    threshold: Mapped[float | None] = mapped_column(Float)
    for_s: Mapped[float | None] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


class IdlePolicy(Base):
    """When idle workloads of one kind are stopped: per workspace, or for every workspace (`workspace_id`
    None); a workspace's own policy wins over the platform-wide one."""

    __tablename__ = "idle_policies"
    __table_args__ = (UniqueConstraint("workspace_id", "kind", name="uq_idle_policies_workspace_kind"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    workspace_id: Mapped[str | None] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # a WorkloadKind
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    gpu_util_below_percent: Mapped[float] = mapped_column(Float)
    idle_for_s: Mapped[float] = mapped_column(Float)
    warn_before_s: Mapped[float] = mapped_column(Float)
    postpone_s: Mapped[float] = mapped_column(Float)
    max_postpone_s: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


class ReclaimNotice(Base):
    """A workload warned that it will be stopped for idleness at `stop_at` (postponed by "keep")."""

    __tablename__ = "reclaim_notices"

    workload_id: Mapped[str] = mapped_column(ForeignKey("workloads.id", ondelete="CASCADE"), primary_key=True)
    warned_at: Mapped[datetime] = mapped_column(UtcDateTime)
    stop_at: Mapped[datetime] = mapped_column(UtcDateTime)
    latest_stop_at: Mapped[datetime] = mapped_column(UtcDateTime)  # the hard cap of postponements
    kept_by: Mapped[str | None] = mapped_column(String(64))
    kept_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class WorkloadActivity(Base):
    """When a workload's endpoints last carried a request through the gateway (flushed periodically)."""

    __tablename__ = "workload_activity"

    workload_id: Mapped[str] = mapped_column(ForeignKey("workloads.id", ondelete="CASCADE"), primary_key=True)
    last_request_at: Mapped[datetime] = mapped_column(UtcDateTime)
