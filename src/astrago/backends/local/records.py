"""Durable per-replica run records: what the server launched, so a restart re-adopts instead of relaunching.

Layout under `<data dir>/runs/<workload id>/`, one set per replica index `i`:
- `i.record.json`  written by the server only: the intent (before spawning), then the runner's identity
  (after spawning), a stop request, and finally the outcome.
- `i.status.json`  written by the runner only: the command's pid, then its exit code or signal.
- `i.stop.json`    written by the server before it signals the runner: the reason and the grace period.
Every write is atomic (temporary file + rename), so each file is always whole."""

from __future__ import annotations

import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from astrago.backends.base import BackendError
from astrago.backends.local.process import ProcessIdentity
from astrago.backends.local.runner import write_bytes_atomic
from astrago.domain.enums import ReplicaState

_WORKLOAD_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_RECORD_SUFFIX = ".record.json"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RunnerIdentity(_Frozen):
    pid: int
    start_ticks: int
    boot_id: str

    @classmethod
    def of(cls, identity: ProcessIdentity) -> RunnerIdentity:
        return cls(pid=identity.pid, start_ticks=identity.start_ticks, boot_id=identity.boot_id)

    def as_identity(self) -> ProcessIdentity:
        return ProcessIdentity(pid=self.pid, start_ticks=self.start_ticks, boot_id=self.boot_id)


class StopRecord(_Frozen):
    reason: str
    grace_s: float
    requested_at: float
    failed: bool = False  # stopped because it failed (e.g. never became ready), not because it was asked


class PortBinding(_Frozen):
    """A port the workload asked for and the host port this replica listens on for it."""

    port: int
    host_port: int


class Readiness(_Frozen):
    timeout_s: float
    health_path: str | None = None
    interval_s: float = 5.0  # once ready, checked this often ...
    failure_threshold: int = 3  # ... and out of the gateway's rotation after this many failures in a row


class Outcome(_Frozen):
    state: ReplicaState
    reason: str
    exit_code: int | None = None
    finished_at: float


class ReplicaRecord(_Frozen):
    version: Literal[1] = 1
    workload_id: str
    replica_index: int
    replicas: int
    node: str
    launch_token: str  # in the runner's environment, to find it if the server died before recording its pid
    argv: tuple[str, ...]
    working_dir: str
    log_path: str
    visible_devices: tuple[str, ...]
    simulated_gpus: bool
    master_port: int | None
    max_runtime_s: int | None
    intent_at: float
    sandboxed: bool = False  # runs in a bubblewrap sandbox (see sandbox.py)
    sandbox_uid: int | None = None  # the workspace's uid (= gid) it runs as, when the server is root
    ports: tuple[PortBinding, ...] = ()
    readiness: Readiness | None = None  # set when the replica has ports: RUNNING only once they answer
    # What the gateway presents to the replica's app (JupyterLab's token): never in a URL, never shown.
    upstream_token: str | None = None
    keeps_prefix: bool = False  # the app serves under its gateway path (a notebook given its base_url)
    ready_at: float | None = None
    runner: RunnerIdentity | None = None
    started_at: float | None = None
    stop: StopRecord | None = None
    outcome: Outcome | None = None

    @property
    def key(self) -> tuple[str, int]:
        return (self.workload_id, self.replica_index)

    @property
    def is_finished(self) -> bool:
        return self.outcome is not None

    def with_runner(self, identity: ProcessIdentity, started_at: float) -> ReplicaRecord:
        return self.model_copy(update={"runner": RunnerIdentity.of(identity), "started_at": started_at})

    @property
    def is_ready(self) -> bool:
        return self.readiness is None or self.ready_at is not None

    def with_stop(self, reason: str, grace_s: float, failed: bool = False) -> ReplicaRecord:
        stop = StopRecord(reason=reason, grace_s=grace_s, requested_at=time.time(), failed=failed)
        return self.model_copy(update={"stop": stop})

    def with_ready(self, at: float) -> ReplicaRecord:
        return self.model_copy(update={"ready_at": at})

    def with_outcome(self, outcome: Outcome) -> ReplicaRecord:
        return self.model_copy(update={"outcome": outcome})


@dataclass(frozen=True, slots=True)
class UnreadableRecord:
    """A record file that exists but cannot be parsed: its replica must never be started again."""

    workload_id: str
    replica_index: int
    path: Path
    error: str


def check_workload_id(workload_id: str) -> None:
    """Workload ids name directories: refuse anything that could escape them."""
    if not _WORKLOAD_ID_RE.match(workload_id):
        raise BackendError(
            f"workload id {workload_id!r} cannot name a run directory; use letters, digits, '.', '_' and '-'"
        )


class RecordStore:
    def __init__(self, runs_dir: Path) -> None:
        self.runs_dir = runs_dir

    def workload_dir(self, workload_id: str) -> Path:
        check_workload_id(workload_id)
        return self.runs_dir / workload_id

    def record_path(self, workload_id: str, replica_index: int) -> Path:
        return self.workload_dir(workload_id) / f"{replica_index}{_RECORD_SUFFIX}"

    def status_path(self, workload_id: str, replica_index: int) -> Path:
        return self.workload_dir(workload_id) / f"{replica_index}.status.json"

    def stop_path(self, workload_id: str, replica_index: int) -> Path:
        return self.workload_dir(workload_id) / f"{replica_index}.stop.json"

    def exists(self, workload_id: str, replica_index: int) -> bool:
        return self.record_path(workload_id, replica_index).exists()

    def save(self, record: ReplicaRecord) -> None:
        directory = self.workload_dir(record.workload_id)
        directory.mkdir(parents=True, exist_ok=True)
        payload = record.model_dump_json(indent=1).encode() + b"\n"
        write_bytes_atomic(self.record_path(record.workload_id, record.replica_index), payload)

    def load_all(self) -> list[ReplicaRecord | UnreadableRecord]:
        if not self.runs_dir.is_dir():
            return []
        loaded: list[ReplicaRecord | UnreadableRecord] = []
        for path in sorted(self.runs_dir.glob(f"*/*{_RECORD_SUFFIX}")):
            loaded.append(self._load(path))
        return loaded

    @staticmethod
    def _load(path: Path) -> ReplicaRecord | UnreadableRecord:
        workload_id, index = path.parent.name, path.name.removesuffix(_RECORD_SUFFIX)
        try:
            record = ReplicaRecord.model_validate_json(path.read_bytes())
        except (OSError, ValidationError) as exc:
            return UnreadableRecord(workload_id, int(index) if index.isdigit() else -1, path, str(exc))
        if record.key != (workload_id, int(index) if index.isdigit() else -1):
            return UnreadableRecord(workload_id, record.replica_index, path, "record is in the wrong file")
        return record

    def delete_workload(self, workload_id: str) -> None:
        shutil.rmtree(self.workload_dir(workload_id), ignore_errors=True)
