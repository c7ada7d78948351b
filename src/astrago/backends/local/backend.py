"""The local executor: each replica is a process group on this machine, supervised by a small runner.

Lifecycle of one replica (see records.py for the files and runner.py for the supervisor):
1. `start` writes an *intent* record, spawns the runner in a new session, then records the runner's
   identity (pid, start time, boot id). A replica that has a record is never spawned again.
2. The runner starts the command in its own process group, waits for it, and writes the exit status.
3. The server awaits the runner's exit through a pidfd (no polling), turns the status into an outcome,
   records it and announces it on `watch()`.
4. After a crash of the server, `open()` reads the records: live runners are re-adopted, finished ones
   report their recorded exit, vanished ones are LOST with a reason; an intent without a pid is resolved by
   looking for the runner's launch token in /proc, and is never relaunched.

Every replica runs in a bubblewrap sandbox (sandbox.py) when one can be created here; otherwise the
backend reports single-user mode in `isolation` and runs replicas as plain processes."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import getpass
import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Collection, Coroutine
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Self

from astrago.backends.base import (
    BackendCapabilities,
    BackendError,
    Capability,
    CapabilityMissing,
    Endpoint,
    ExecRequest,
    ExecSession,
    LaunchSpec,
    NodeInventory,
    Orphan,
    OrphanPolicy,
    ReplicaObservation,
)
from astrago.backends.local import runner
from astrago.backends.local.generations import generation_id, logical_id, reporting
from astrago.backends.local.interactive import (
    is_default_notebook,
    new_upstream_token,
    notebook_argv,
    notebook_env,
    port_env,
    readiness,
)
from astrago.backends.local.inventory import detect_node
from astrago.backends.local.outcomes import lost, outcome_of
from astrago.backends.local.plan import (
    LAUNCH_TOKEN_ENV,
    command_argv,
    master_port,
    replica_env,
    visible_devices,
    workload_base_env,
)
from astrago.backends.local.ports import allocate_host_ports
from astrago.backends.local.process import (
    ProcessHandle,
    ProcessIdentity,
    current_boot_id,
    find_session_leader_with_env,
    is_same_process_alive,
    kill_process_group,
    read_identity,
)
from astrago.backends.local.readiness import Probe, is_ready, last_lines, wait_until_ready
from astrago.backends.local.records import (
    Outcome,
    PortBinding,
    Readiness,
    RecordStore,
    ReplicaRecord,
    UnreadableRecord,
    check_workload_id,
)
from astrago.backends.local.sandbox import (
    HOW_TO_ENABLE,
    BindMount,
    Sandbox,
    SandboxCommand,
    SandboxSpec,
    SandboxUnavailable,
    SandboxUser,
    detect_sandbox,
)
from astrago.backends.local.terminal import PipeSession, PtySession, ReplicaBoundSession, replica_context
from astrago.backends.local.uids import WorkspaceUids
from astrago.backends.local.volumes import prepare_volume_links
from astrago.backends.local.workdir import unpack_code_bundle
from astrago.config import Settings
from astrago.domain.enums import ReplicaState
from astrago.domain.isolation import IsolationMode, IsolationStatus
from astrago.domain.limits import exec_size_problem
from astrago.store.code_bundles import code_bundle_store

log = logging.getLogger(__name__)

LOG_FOLLOW_POLL_S = 0.05  # how often `logs(follow=True)` looks for new output while the replica runs
READY_POLL_S = 0.1
DRAIN_S = 2.0  # after leaving the rotation, how long an old replica gets for requests already sent to it
_LOG_CHUNK = 64 * 1024
_RUNNER_PATH = Path(runner.__file__)
SHARED_SHM_ROOT = Path("/dev/shm")

ReplicaKey = tuple[str, int]

CAPABILITIES = BackendCapabilities(
    backend="local",
    supported=frozenset(
        {
            Capability.COMMANDS,
            Capability.DISTRIBUTED,
            Capability.PORTS,
            Capability.VOLUMES,  # relative mount paths: links in the working directory (see volumes.py)
            Capability.INTERACTIVE,
            Capability.SERVICES,
            Capability.ROLLING_UPDATE,
            Capability.ENDPOINTS,
            Capability.DURABLE_LOGS,
            Capability.EXEC,
            Capability.TTY,
        }
    ),
    # `framework` only with its default, pytorch (`framework: mpi` needs Capability.MPI)
    options=frozenset(
        {
            "framework",
            "readiness_timeout",
            "health_path",
            "health_interval",
            "health_threshold",
            "proxy_prefix",
        }
    ),
)


@dataclass(frozen=True, slots=True)
class RunnerProcess:
    """A live replica's runner: the ancestor of all of the replica's processes."""

    pid: int
    start_ticks: int
    workload_id: str
    replica_index: int


@dataclass(frozen=True, slots=True)
class _Planned:
    """One replica ready to spawn: its record, its environment, and the sandbox around its command."""

    record: ReplicaRecord
    env: dict[str, str]
    sandbox_argv: tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class _Launched:
    record: ReplicaRecord
    handle: ProcessHandle | None


@dataclass(frozen=True, slots=True)
class _NotRecorded:
    """The intent record could not be written, so the replica was not spawned (a later start retries)."""

    replica_index: int
    error: OSError


@dataclass(eq=False)
class _Replica:
    record: ReplicaRecord
    handle: ProcessHandle | None = None
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    healthy: bool = True  # once ready: passes its health checks (else out of the gateway's rotation)
    draining: bool = False  # replaced by a newer revision: out of the rotation, about to be stopped

    @property
    def record_id(self) -> str:
        return self.record.workload_id

    @property
    def live_and_ready(self) -> bool:
        return not self.record.is_finished and self.record.runner is not None and self.record.is_ready

    @property
    def logical_key(self) -> ReplicaKey:
        return (logical_id(self.record.workload_id), self.record.replica_index)

    def observation(self) -> ReplicaObservation:
        record, outcome = self.record, self.record.outcome
        if outcome is not None:
            state = outcome.state
        else:
            running = record.runner is not None and record.is_ready
            state = ReplicaState.RUNNING if running else ReplicaState.STARTING
        return ReplicaObservation(
            workload_id=logical_id(record.workload_id),
            replica_index=record.replica_index,
            state=state,
            exit_code=outcome.exit_code if outcome else None,
            reason=outcome.reason if outcome else None,
            node=record.node,
            started_at=record.started_at,
            finished_at=outcome.finished_at if outcome else None,
        )


class _ObservationStream:
    """One `watch()` consumer. Subscribed from creation, so nothing emitted after `watch()` is missed."""

    def __init__(self, streams: set[_ObservationStream]) -> None:
        self._queue: asyncio.Queue[ReplicaObservation | None] = asyncio.Queue()
        self._streams = streams
        streams.add(self)

    def publish(self, observation: ReplicaObservation | None) -> None:
        self._queue.put_nowait(observation)

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> ReplicaObservation:
        item = await self._queue.get()
        if item is None:  # the backend closed
            self._streams.discard(self)
            raise StopAsyncIteration
        return item

    async def aclose(self) -> None:
        self._streams.discard(self)


class LocalBackend:
    """Runs workloads as process groups on this machine (see the module docstring)."""

    name = "local"
    capabilities = CAPABILITIES

    def __init__(self, settings: Settings, *, node_name: str | None = None, gpu_source: str = "auto") -> None:
        """`node_name` defaults to the host name; `gpu_source` is where real GPUs are listed from (see
        `astrago.gpu.inventory.local_gpus`: `auto`, `nvml`, `smi`, or `replay:PATH` for a recording)."""
        self._settings = settings
        self._node_name = node_name
        self._gpu_source = gpu_source
        self._store = RecordStore(settings.runs_dir)
        self._node: NodeInventory | None = None
        self._replicas: dict[ReplicaKey, _Replica] = {}
        self._unreadable: dict[ReplicaKey, UnreadableRecord] = {}
        self._launching: set[ReplicaKey] = set()
        self._rolling: set[str] = set()  # generations being rolled out
        self._waiters: set[asyncio.Task[None]] = set()
        self._streams: set[_ObservationStream] = set()
        self._mutation = asyncio.Lock()
        self._lock_file: IO[str] | None = None
        self._sandbox: Sandbox | None = None
        self._shared: tuple[BindMount, ...] = ()  # sandbox_shared_paths, checked
        self._uids = WorkspaceUids(settings.runs_dir / "workspace-uids.json", settings.sandbox_uid_base)
        self.isolation: IsolationStatus | None = None  # known once open

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalBackend:
        return cls(settings)

    # -- lifecycle ---------------------------------------------------------------------------------------

    async def open(self) -> None:
        if self._node is not None:
            return
        for directory in (self._settings.runs_dir, self._settings.logs_dir, self._workdirs):
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            directory.chmod(0o700)
        self._lock_data_dir()
        try:
            await asyncio.to_thread(self._detect_sandbox)
            self._node = await asyncio.to_thread(
                detect_node, self._settings.simulate_gpus, self._node_name, self._gpu_source
            )
            for loaded in self._store.load_all():
                self._reconcile_loaded(loaded)
        except BaseException:
            self._unlock_data_dir()
            self._node = None
            raise

    async def close(self) -> None:
        """Stop watching; the processes keep running and the next `open()` re-adopts them."""
        for task in self._waiters:
            task.cancel()
        await asyncio.gather(*self._waiters, return_exceptions=True)
        for replica in self._replicas.values():
            if replica.handle is not None:
                replica.handle.close()
        for stream in list(self._streams):
            stream.publish(None)
        self._replicas.clear()
        self._unreadable.clear()
        self._node = None
        self._unlock_data_dir()

    def _detect_sandbox(self) -> None:
        detected = detect_sandbox(self._settings.sandbox_bwrap, self.hidden_paths())
        if isinstance(detected, SandboxUnavailable):
            self._sandbox = None
            self.isolation = IsolationStatus(
                mode=IsolationMode.SINGLE_USER,
                detail=detected.reason,
                runs_as=f"the server's own account ({getpass.getuser()}), without a sandbox",
                how_to_enable=HOW_TO_ENABLE,
            )
            log.warning("single-user mode: %s; only admins may run workloads", detected.reason)
            return
        self._sandbox = detected
        shared = shared_binds(self._settings.sandbox_shared_paths, detected.hidden)
        self._shared = (*interpreter_binds(detected.hidden), *shared)
        if detected.as_root:
            runs_as = f"one unprivileged uid per workspace (from {self._settings.sandbox_uid_base})"
        else:
            runs_as = f"the server's own account ({getpass.getuser()}), inside the sandbox"
        self.isolation = IsolationStatus(
            mode=IsolationMode.SANDBOXED,
            detail=f"bubblewrap ({detected.bwrap}): own PID, mount and IPC namespaces for each replica",
            runs_as=runs_as,
        )

    def hidden_paths(self) -> list[Path]:
        """Host paths no workload may see: the data dir (database, run records, logs, every workload's
        files), the database and config files, the TLS files, and those of `sandbox_hide_paths`."""
        settings = self._settings
        paths = [settings.data_dir, Path.home(), *settings.sandbox_hide_paths]
        if (database := settings.sqlite_path) is not None:
            suffixes = ("", "-wal", "-shm", "-journal")
            paths += [database.with_name(database.name + suffix) for suffix in suffixes]
        if config := os.environ.get("ASTRAGO_CONFIG"):
            paths.append(Path(config))
        paths += [path for path in (settings.tls_cert, settings.tls_key) if path is not None]
        return [path.expanduser() for path in paths]

    async def inventory(self) -> list[NodeInventory]:
        return [self._opened_node()]

    # -- start -------------------------------------------------------------------------------------------

    async def start(self, spec: LaunchSpec) -> None:
        """Launch each replica that has no record yet. Everything is checked before anything starts: a bad
        spec raises BackendError and leaves no trace."""
        node = self._opened_node()
        check_workload_id(spec.workload_id)
        argv = () if is_default_notebook(spec) else command_argv(spec.command)
        if problem := exec_size_problem(argv, dict(spec.env)):  # the API refuses these at submit already
            raise BackendError(problem)
        ready_check = readiness(spec)
        self._check_placement(spec, node)
        if spec.max_runtime_s is not None and spec.max_runtime_s < 1:
            raise BackendError(f"max runtime must be at least 1 second, not {spec.max_runtime_s}")
        devices_by_index = {device.index: device for device in node.devices}
        gpus = {replica.index: visible_devices(replica, devices_by_index) for replica in spec.replicas}
        working_dir = self._working_dir(spec)
        volume_env = prepare_volume_links(spec, working_dir)
        async with self._mutation:
            user = await asyncio.to_thread(self._sandbox_user, spec, working_dir)
            port = self._master_port(spec)
            passthrough = self._settings.workload_env_passthrough
            base_env = with_fallback_python(workload_base_env(os.environ, passthrough, str(working_dir)))
            launches: list[_Planned] = []
            record_id = generation_id(spec.workload_id, spec.revision)
            for replica in spec.replicas:
                key = (record_id, replica.index)
                if self._is_known(key):
                    continue  # never started twice
                devices, simulated = gpus[replica.index]
                env = {**replica_env(spec, replica, base_env, devices, simulated, port), **volume_env}
                bindings, token = self._bind_ports(spec), None
                env.update(port_env(spec, bindings))
                replica_argv = argv
                if is_default_notebook(spec):
                    token = new_upstream_token()
                    env.update(notebook_env(token))
                    replica_argv = notebook_argv(spec, env, bindings[0], str(working_dir))
                record = ReplicaRecord(
                    workload_id=record_id,
                    replica_index=replica.index,
                    replicas=len(spec.replicas),
                    node=node.name,
                    launch_token=uuid.uuid4().hex,
                    argv=replica_argv,
                    working_dir=str(working_dir),
                    log_path=str(self.log_path(record_id, replica.index)),
                    visible_devices=devices,
                    simulated_gpus=simulated,
                    master_port=port,
                    max_runtime_s=spec.max_runtime_s,
                    intent_at=time.time(),
                    ports=bindings,
                    readiness=ready_check,
                    upstream_token=token,
                    keeps_prefix=token is not None or spec.extra.get("proxy_prefix") == "keep",
                    sandboxed=self._sandbox is not None,
                    sandbox_uid=user.uid if user else None,
                )
                # Real GPUs only: /dev/nvidiaN by the device index (the driver's minor number; see docs)
                gpus_given = () if simulated else tuple(replica.gpu_indices)
                sandbox = self._sandbox_argv(spec, working_dir, env, gpus_given, user)
                launches.append(_Planned(record, env, sandbox))
            if launches:
                await self._launch_all(launches)

    def _is_known(self, key: ReplicaKey) -> bool:
        return (
            key in self._replicas
            or key in self._launching
            or key in self._unreadable
            or self._store.exists(*key)
        )

    def _sandbox_user(self, spec: LaunchSpec, working_dir: Path) -> SandboxUser | None:
        """The workspace's uid when the sandbox runs as root (then its working directory becomes its own)."""
        if self._sandbox is None or not self._sandbox.as_root:
            return None
        user = self._uids.user_for(spec.workspace)
        if working_dir == self._workdirs / spec.workload_id and working_dir.stat().st_uid != user.uid:
            give_tree(working_dir, user)  # once: the unpacked code, made by the server, becomes the job's
        return user

    def _sandbox_argv(
        self,
        spec: LaunchSpec,
        working_dir: Path,
        env: dict[str, str],
        gpus: tuple[int, ...],
        user: SandboxUser | None,
    ) -> tuple[str, ...] | None:
        if self._sandbox is None:
            return None
        sandbox_spec = SandboxSpec(
            working_dir=working_dir,
            env=env,
            # each volume at its own host path, where the links in the working directory point
            binds=(*self._shared, *(BindMount(Path(m.host_path), Path(m.host_path)) for m in spec.volumes)),
            gpu_devices=gpus,
            user=user,
            shared_shm=self._shared_shm(spec, user),
        )
        return self._sandbox.command(sandbox_spec, ()).argv

    def _shared_shm(self, spec: LaunchSpec, user: SandboxUser | None) -> Path | None:
        """One /dev/shm for all replicas of a multi-replica workload (NCCL's shared-memory transport)."""
        if len(spec.replicas) < 2 or not SHARED_SHM_ROOT.is_dir():
            return None
        path = self.shared_shm_path(spec.workload_id)
        path.mkdir(mode=0o700, exist_ok=True)
        if user is not None:
            os.chown(path, user.uid, user.gid)
        return path

    def enter_command(self, workload_id: str, replica_index: int, argv: tuple[str, ...]) -> SandboxCommand:
        """How to run `argv` as a second process of a running replica (for exec): inside its sandbox, as its
        uid, in its working directory, with the workload's base environment (not the server's)."""
        replica = self._replicas.get((workload_id, replica_index))
        if replica is None or replica.record.is_finished:
            raise BackendError(f"workload {workload_id} has no running replica {replica_index}")
        record = replica.record
        env = workload_base_env(os.environ, self._settings.workload_env_passthrough, record.working_dir)
        if not record.sandboxed:
            return SandboxCommand(argv=argv, env=env, cwd=record.working_dir)
        status = self._read_status(record)
        if self._sandbox is None or status is None or status.sandbox_pid is None:
            raise BackendError(f"the sandbox of replica {replica_index} of {workload_id} is not running")
        user = SandboxUser(record.sandbox_uid, record.sandbox_uid) if record.sandbox_uid is not None else None
        spec = SandboxSpec(working_dir=Path(record.working_dir), env=env, user=user)
        return SandboxCommand(argv=tuple(self._sandbox.enter_argv(status.sandbox_pid, spec, argv)), env=env)

    async def _launch_all(self, launches: list[_Planned]) -> None:
        """Spawn in a worker thread (fsync and fork take tens of milliseconds on a disk; the event loop
        keeps serving meanwhile). Registration happens in a callback, so a cancelled `start` cannot lose
        track of a process that was spawned anyway."""
        keys = [planned.record.key for planned in launches]
        self._launching.update(keys)

        def register(done: asyncio.Future[list[_Launched | _NotRecorded]]) -> None:
            self._launching.difference_update(keys)
            if not done.cancelled() and done.exception() is None:
                for launched in done.result():
                    if isinstance(launched, _Launched):
                        self._register(launched.record, launched.handle)

        future = asyncio.ensure_future(asyncio.to_thread(self._spawn_all, launches))
        future.add_done_callback(register)
        failures = [result for result in await asyncio.shield(future) if isinstance(result, _NotRecorded)]
        if failures:
            raise BackendError(
                f"could not write the run record of replica {failures[0].replica_index}, so it was not "
                f"started: {failures[0].error}"
            )

    def _spawn_all(self, launches: list[_Planned]) -> list[_Launched | _NotRecorded]:
        results: list[_Launched | _NotRecorded] = []
        for planned in launches:
            try:
                self._store.save(planned.record)  # the intent: from here on, it is never spawned again
            except OSError as exc:
                results.append(_NotRecorded(planned.record.replica_index, exc))
                continue
            results.append(self._spawn(planned))
        return results

    def _spawn(self, planned: _Planned) -> _Launched:
        record = planned.record
        try:
            popen = spawn_runner(
                record, planned.env, self._store, self._settings.stop_grace_s, sandbox=planned.sandbox_argv
            )
        except OSError as exc:
            failed = Outcome(
                state=ReplicaState.FAILED,
                reason=f"could not start the runner: {exc}",
                finished_at=time.time(),
            )
            record = record.with_outcome(failed)
            self._save_logged(record)
            return _Launched(record, None)
        # An unreaped child keeps its /proc entry, so its identity can always be read.
        identity = read_identity(popen.pid, include_exited=True) or ProcessIdentity(popen.pid, 0, "")
        record = record.with_runner(identity, started_at=time.time())
        self._save_logged(record)  # if this fails, open() finds the runner again by its launch token
        return _Launched(record, ProcessHandle(identity, popen))

    def _save_logged(self, record: ReplicaRecord) -> None:
        try:
            self._store.save(record)
        except OSError:
            log.exception("could not update the run record of replica %s/%s", *record.key)

    def _bind_ports(self, spec: LaunchSpec) -> tuple[PortBinding, ...]:
        """A host port for each port the workload asked for, none of them held by another live replica."""
        if not spec.ports:
            return ()
        taken = {
            binding.host_port
            for replica in self._replicas.values()
            if not replica.record.is_finished
            for binding in replica.record.ports
        }
        host_ports = allocate_host_ports(len(spec.ports), taken)
        return tuple(PortBinding(port=p, host_port=h) for p, h in zip(spec.ports, host_ports, strict=True))

    def _master_port(self, spec: LaunchSpec) -> int | None:
        if len(spec.replicas) < 2:
            return None
        for (workload_id, _), replica in self._replicas.items():
            if workload_id == spec.workload_id and replica.record.master_port is not None:
                return replica.record.master_port  # replicas launched earlier already use this one
        return master_port(spec.workload_id)

    def _working_dir(self, spec: LaunchSpec) -> Path:
        if spec.image:
            raise BackendError(
                f"the local executor runs commands on this machine and cannot run the image {spec.image!r}; "
                "give a command instead, or use the kubernetes backend"
            )
        own = self._workdirs / spec.workload_id
        if spec.working_dir:
            path = Path(spec.working_dir).expanduser()
            if not path.is_absolute():
                raise BackendError(f"working directory {spec.working_dir} must be an absolute path")
            if not path.is_dir():
                raise BackendError(f"working directory {spec.working_dir} does not exist on this machine")
            self._check_not_hidden(path, own)
            return path
        if spec.code_bundle:
            unpack_code_bundle(code_bundle_store(self._settings.data_dir), spec.code_bundle, own)
        own.mkdir(mode=0o700, parents=True, exist_ok=True)
        return own

    def _check_not_hidden(self, path: Path, own: Path) -> None:
        """A working directory is bound into the sandbox read-write: never one that holds, or lies in, what
        the sandbox hides (other than the workload's own directory)."""
        real = Path(os.path.realpath(path))
        if self._sandbox is None or real.is_relative_to(os.path.realpath(own)):
            return
        for hidden in self._sandbox.hidden:
            if real.is_relative_to(hidden) or hidden.is_relative_to(real):
                raise BackendError(
                    f"working directory {path} would expose {hidden}, which workloads may not see; "
                    "choose a directory outside the server's data dir and files"
                )

    @staticmethod
    def _check_placement(spec: LaunchSpec, node: NodeInventory) -> None:
        if not spec.replicas:
            raise BackendError(f"workload {spec.workload_id} has no replicas to start")
        indices = [replica.index for replica in spec.replicas]
        if sorted(indices) != list(range(len(indices))):
            raise BackendError(f"replica indices must be 0..{len(indices) - 1}, got {sorted(indices)}")
        for replica in spec.replicas:
            if replica.node != node.name:
                raise BackendError(
                    f"replica {replica.index} is placed on node {replica.node!r}, "
                    f"but this local executor runs node {node.name!r}"
                )

    # -- stop --------------------------------------------------------------------------------------------

    async def stop(self, workload_id: str, grace_s: float, reason: str) -> None:
        """Ask each running replica to stop; returns at once. The runner sends SIGTERM to the command's
        process group and SIGKILL after `grace_s`; the end is reported as STOPPED with `reason`."""
        self._opened_node()
        grace_s = max(0.0, grace_s)
        async with self._mutation:
            for replica in self._replicas_of(workload_id):
                await self._stop_replica(replica, reason, grace_s)

    async def _stop_replica(
        self, replica: _Replica, reason: str, grace_s: float, failed: bool = False
    ) -> None:
        if replica.record.is_finished or replica.record.stop is not None:
            return
        stopping = replica.record.with_stop(reason, grace_s, failed=failed)
        # Durable before the signal: a restarted server re-sends it, a runner reads the reason.
        await asyncio.to_thread(self._record_stop, stopping, runner.StopRequest(reason, grace_s))
        replica.record = stopping
        self._signal_stop(replica)

    def _record_stop(self, record: ReplicaRecord, request: runner.StopRequest) -> None:
        request.save(self._store.stop_path(*record.key))
        self._store.save(record)

    @staticmethod
    def _signal_stop(replica: _Replica) -> None:
        if replica.handle is not None:
            replica.handle.send_signal(signal.SIGTERM)

    # -- observe / watch / logs --------------------------------------------------------------------------

    async def observe(self) -> list[ReplicaObservation]:
        self._opened_node()
        keys = {replica.logical_key for replica in self._replicas.values()}
        observations = [self._reported(key).observation() for key in keys]
        observations += [unreadable_observation(entry) for entry in self._unreadable.values()]
        return sorted(observations, key=lambda o: (o.workload_id, o.replica_index))

    def runner_processes(self) -> list[RunnerProcess]:
        """The runner of each unfinished replica. Every process of a replica descends from its runner, so
        telemetry attributes a GPU process to a replica by walking up its parents to one of these."""
        return [
            RunnerProcess(
                pid=replica.record.runner.pid,
                start_ticks=replica.record.runner.start_ticks,
                workload_id=logical_id(replica.record.workload_id),
                replica_index=replica.record.replica_index,
            )
            for replica in self._replicas.values()
            if replica.record.runner is not None and not replica.record.is_finished
        ]

    def watch(self) -> AsyncIterator[ReplicaObservation]:
        """Each replica's changes (running, then its outcome) as they happen, until the backend closes."""
        return _ObservationStream(self._streams)

    def log_path(self, workload_id: str, replica_index: int) -> Path:
        check_workload_id(workload_id)
        return self._settings.logs_dir / workload_id / f"{replica_index}.log"

    async def logs(
        self, workload_id: str, replica_index: int, follow: bool, offset: int = 0
    ) -> AsyncIterator[bytes]:
        """The replica's output (stdout and stderr interleaved) from the start; with `follow`, new output
        as it is written until the replica ends. Logs outlive `forget`. After a rolling update, the
        log of the generation that now serves."""
        replica = None
        if any(r.logical_key == (workload_id, replica_index) for r in self._replicas.values()):
            replica = self._reported((workload_id, replica_index))
        path = Path(replica.record.log_path) if replica else self.log_path(workload_id, replica_index)
        try:
            file = path.open("rb")
        except FileNotFoundError:
            raise BackendError(f"workload {workload_id} has no replica {replica_index} with logs") from None
        with file:
            file.seek(offset)
            while True:
                chunk = file.read(_LOG_CHUNK)
                if chunk:
                    yield chunk
                    continue
                if not follow or replica is None or replica.ended.is_set():
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(replica.ended.wait(), LOG_FOLLOW_POLL_S)
            while chunk := file.read(_LOG_CHUNK):  # what was written between the last read and the end
                yield chunk

    async def forget(self, workload_id: str) -> None:
        self._opened_node()
        async with self._mutation:
            replicas = self._replicas_of(workload_id)
            running = [r.record.replica_index for r in replicas if not r.record.is_finished]
            if running:
                raise BackendError(
                    f"workload {workload_id} still runs replicas {running}; stop it before forgetting it"
                )
            for replica in replicas:
                del self._replicas[replica.record.key]
            for key in [key for key in self._unreadable if logical_id(key[0]) == workload_id]:
                del self._unreadable[key]
            for record_id in {replica.record_id for replica in replicas} | {workload_id}:
                self._store.delete_workload(record_id)
            self._remove_shared_shm(workload_id)

    async def endpoints(self, workload_id: str) -> list[Endpoint]:
        """The host port of each requested port of each replica that still runs (ready or not yet)."""
        self._opened_node()
        endpoints: list[Endpoint] = []
        for replica in sorted(self._replicas_of(workload_id), key=lambda r: r.record.replica_index):
            record = replica.record
            if record.is_finished or record.stop is not None or record.runner is None or replica.draining:
                continue
            token = f"token {record.upstream_token}" if record.upstream_token else None
            endpoints += [
                Endpoint(
                    port=binding.port,
                    host="127.0.0.1",
                    target_port=binding.host_port,
                    replica_index=record.replica_index,
                    ready=record.is_ready and replica.healthy,
                    upstream_authorization=token,
                    keeps_prefix=record.keeps_prefix,
                )
                for binding in record.ports
            ]
        return endpoints

    async def open_exec(self, workload_id: str, replica_index: int, request: ExecRequest) -> ExecSession:
        """Run `request.argv` in the replica's environment and working directory (see terminal.py); the
        session is killed when the replica ends."""
        self._opened_node()
        replica = self._replicas.get((workload_id, replica_index))
        if replica is None or replica.record.is_finished or replica.record.stop is not None:
            raise BackendError(f"replica {replica_index} of workload {workload_id} is not running")
        env, cwd = self._exec_context(replica.record)
        if replica.record.sandboxed:
            # Never on the host: the command joins the replica's sandbox (its namespaces and uid).
            request = replace(request, argv=self._enter_sandbox_argv(replica.record, env, cwd, request.argv))
            cwd = "/"
        session: ExecSession
        if request.tty:
            session = PtySession.spawn(request, env, cwd)
        else:
            session = await PipeSession.spawn(request, env, cwd)
        return ReplicaBoundSession(session, replica.ended)

    def _enter_sandbox_argv(
        self, record: ReplicaRecord, env: dict[str, str], cwd: str, argv: tuple[str, ...]
    ) -> tuple[str, ...]:
        status = self._read_status(record)
        if self._sandbox is None or status is None or status.sandbox_pid is None:
            raise BackendError(
                f"the sandbox of replica {record.replica_index} of {record.workload_id} is not running"
            )
        user = SandboxUser(record.sandbox_uid, record.sandbox_uid) if record.sandbox_uid is not None else None
        spec = SandboxSpec(working_dir=Path(record.working_dir), env=env, user=user)
        return tuple(self._sandbox.enter_argv(status.sandbox_pid, spec, argv, cwd=Path(cwd)))

    def _exec_context(self, record: ReplicaRecord) -> tuple[dict[str, str], str]:
        """The environment and working directory of the replica's running command."""
        status = self._read_status(record)
        if status is None or status.child_pid is None or status.finished_at is not None:
            raise BackendError(
                f"replica {record.replica_index} of workload {record.workload_id} is not running"
            )
        identity = read_identity(status.child_pid)
        if identity is None or identity.start_ticks != status.child_start_ticks:
            raise BackendError(f"the command of replica {record.replica_index} has ended")
        return replica_context(status.child_pid)

    async def roll(self, spec: LaunchSpec) -> None:
        """Start `spec.revision` beside the running replicas; once all of them are ready, take the old
        ones out of the gateway's rotation, let in-flight requests finish, and stop them. A new revision
        that fails to become ready is stopped, and the old one keeps serving."""
        self._opened_node()
        target = generation_id(spec.workload_id, spec.revision)
        if target in self._rolling:
            return
        ours = [r for r in self._replicas_of(spec.workload_id) if r.record_id == target]
        if any(r.record.is_finished for r in ours):
            return  # this revision failed once: not again (a newer revision may be asked for)
        older = [r for r in self._replicas_of(spec.workload_id) if r.record_id != target]
        if ours and not any(not r.record.is_finished and r.record.stop is None for r in older):
            return  # rolled already
        self._rolling.add(target)
        self._supervise(self._roll(spec, target))

    async def _roll(self, spec: LaunchSpec, target: str) -> None:
        try:
            await self.start(spec)  # idempotent: after a restart, it finds the replicas it started
            new = [r for r in self._replicas_of(spec.workload_id) if r.record_id == target]
            while not all(r.live_and_ready and r.healthy for r in new):
                if any(r.ended.is_set() or r.record.stop is not None for r in new):
                    log.warning(
                        "revision %s of %s did not become ready; the old one keeps serving",
                        spec.revision,
                        spec.workload_id,
                    )
                    async with self._mutation:
                        for replica in new:
                            await self._stop_replica(replica, "rolling update abandoned", 0)
                    return
                await asyncio.sleep(READY_POLL_S)
            old = [
                r
                for r in self._replicas_of(spec.workload_id)
                if r.record_id != target and not r.record.is_finished
            ]
            for replica in old:
                replica.draining = True
            for replica in new:
                self._publish(replica)
            await asyncio.sleep(DRAIN_S)  # requests the gateway already sent to them finish
            async with self._mutation:
                for replica in old:
                    await self._stop_replica(
                        replica, f"replaced by revision {spec.revision}", self._settings.stop_grace_s
                    )
        except BackendError:
            log.exception("rolling update of %s to revision %s failed", spec.workload_id, spec.revision)
        finally:
            self._rolling.discard(target)

    async def reconcile_orphans(
        self, known_workload_ids: Collection[str], policy: OrphanPolicy = OrphanPolicy.REPORT
    ) -> list[Orphan]:
        raise CapabilityMissing(self.name, Capability.ORPHAN_CLEANUP)

    # -- adoption after a restart ------------------------------------------------------------------------

    def _reconcile_loaded(self, loaded: ReplicaRecord | UnreadableRecord) -> None:
        if isinstance(loaded, UnreadableRecord):
            log.error("run record %s cannot be read: %s", loaded.path, loaded.error)
            self._unreadable[(loaded.workload_id, loaded.replica_index)] = loaded
            return
        record = loaded
        if record.outcome is not None:
            self._register(record)
            return
        if record.runner is None:
            found = find_session_leader_with_env(LAUNCH_TOKEN_ENV, record.launch_token)
            if found is None:
                self._finish_loaded(record, "the server stopped while launching this replica")
                return
            record = record.with_runner(found, started_at=record.intent_at)
            self._store.save(record)
        identity = record.runner.as_identity() if record.runner else None
        if identity is None or not is_same_process_alive(identity):
            rebooted = identity is not None and identity.boot_id != current_boot_id()
            why = " (the machine was restarted)" if rebooted else ""
            pid = identity.pid if identity else "?"
            self._finish_loaded(record, f"process {pid} vanished while the server was down{why}")
            return
        log.info("re-adopted replica %s/%s (runner pid %s)", *record.key, identity.pid)
        replica = self._register(record, ProcessHandle(identity))
        if record.stop is not None:  # the server may have died between recording the stop and signalling
            self._signal_stop(replica)

    def _finish_loaded(self, record: ReplicaRecord, lost_reason: str) -> None:
        """A replica whose runner is gone: its status file tells how it ended, else it is LOST."""
        status = self._read_status(record)
        if status is not None and status.finished_at is not None:
            outcome = outcome_of(record, status, runner_returncode=None)
        elif record.runner is None:
            outcome = lost(f"{lost_reason}, and no process of it was found; it is not started again")
        else:
            outcome = lost(lost_reason + kill_orphaned_command(status, record.sandboxed))
        record = record.with_outcome(outcome)
        self._store.save(record)
        self._register(record)

    # -- supervision -------------------------------------------------------------------------------------

    def _register(self, record: ReplicaRecord, handle: ProcessHandle | None = None) -> _Replica:
        replica = _Replica(record=record, handle=handle)
        self._replicas[record.key] = replica
        if record.is_finished:
            replica.ended.set()
        elif handle is not None:
            self._supervise(self._await_exit(replica, handle))
            if record.readiness is not None:  # readiness, then health, also after a restart
                self._supervise(self._await_ready(replica))
        self._publish(replica)
        return replica

    def _supervise(self, work: Coroutine[None, None, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._waiters.add(task)
        task.add_done_callback(self._waiters.discard)

    async def _await_ready(self, replica: _Replica) -> None:
        """RUNNING once its ports answer; failed, with the last lines of its log, if not in time; then its
        health is watched for as long as it runs."""
        record = replica.record
        if record.readiness is None:
            return
        probe = Probe(tuple(b.host_port for b in record.ports), record.readiness.health_path)
        deadline = (record.started_at or record.intent_at) + record.readiness.timeout_s
        if not record.is_ready:
            why = await wait_until_ready(probe, deadline, replica.ended)
            if replica.ended.is_set() or replica.record.stop is not None:
                return
            if why is not None:
                await self._fail_unready(replica, why)
                return
            replica.record = replica.record.with_ready(time.time())
            await asyncio.to_thread(self._save_logged, replica.record)
            self._publish(replica)
        await self._watch_health(replica, probe, record.readiness)

    async def _watch_health(self, replica: _Replica, probe: Probe, readiness: Readiness) -> None:
        """Keep checking a ready replica: `failure_threshold` failures in a row take it out of the gateway's
        rotation (it keeps running; its workload decides), one success puts it back."""
        failures = 0
        while not replica.ended.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(replica.ended.wait(), readiness.interval_s)
            if replica.ended.is_set():
                return
            why = await is_ready(probe)
            failures = 0 if why is None else failures + 1
            healthy = failures < readiness.failure_threshold
            if healthy != replica.healthy:
                replica.healthy = healthy
                key = replica.record.key
                if healthy:
                    log.info("replica %s/%s is healthy again", *key)
                else:
                    log.warning("replica %s/%s failed %d health checks: %s", *key, failures, why)

    async def _fail_unready(self, replica: _Replica, why: str) -> None:
        record = replica.record
        assert record.readiness is not None
        reason = f"not ready after {record.readiness.timeout_s:g}s: {why}"
        tail = last_lines(Path(record.log_path))
        if tail:
            reason += f"; last log lines:\n{tail}"
        async with self._mutation:
            await self._stop_replica(replica, reason, self._settings.stop_grace_s, failed=True)

    async def _await_exit(self, replica: _Replica, handle: ProcessHandle) -> None:
        returncode = await handle.wait_exit()
        handle.close()
        status = self._read_status(replica.record)
        outcome = outcome_of(replica.record, status, returncode)
        if outcome.state is ReplicaState.LOST:
            orphan = kill_orphaned_command(status, replica.record.sandboxed)
            outcome = outcome.model_copy(update={"reason": outcome.reason + orphan})
        replica.record = replica.record.with_outcome(outcome)
        # If this fails, it is still announced: the next open() derives the same outcome from the status file.
        await asyncio.to_thread(self._save_logged, replica.record)
        replica.ended.set()
        self._publish(replica)
        if all(r.record.is_finished for r in self._replicas_of(replica.record.workload_id)):
            self._remove_shared_shm(replica.record.workload_id)  # shared memory is RAM: free it at the end

    def shared_shm_path(self, workload_id: str) -> Path:
        """Per data dir and workload, so two servers on one machine never share one."""
        server = hashlib.sha256(str(self._settings.data_dir.resolve()).encode()).hexdigest()[:12]
        return SHARED_SHM_ROOT / f"astrago-{server}-{workload_id}"

    def _remove_shared_shm(self, workload_id: str) -> None:
        shutil.rmtree(self.shared_shm_path(workload_id), ignore_errors=True)

    def _read_status(self, record: ReplicaRecord) -> runner.RunnerStatus | None:
        path = self._store.status_path(*record.key)
        try:
            data = runner.read_json(path)
        except (OSError, ValueError) as exc:
            log.error("runner status %s cannot be read: %s", path, exc)
            return None
        return runner.RunnerStatus.from_json(data) if data is not None else None

    def _reported(self, key: ReplicaKey) -> _Replica:
        """The generation that speaks for a replica (see generations.py)."""
        candidates = [r for r in self._replicas.values() if r.logical_key == key]
        chosen = reporting(candidates)
        assert isinstance(chosen, _Replica)
        return chosen

    def _publish(self, replica: _Replica) -> None:
        observation = self._reported(replica.logical_key).observation()
        for stream in self._streams:
            stream.publish(observation)

    # -- helpers -----------------------------------------------------------------------------------------

    @property
    def _workdirs(self) -> Path:
        return self._settings.data_dir / "workdirs"

    def _replicas_of(self, workload_id: str) -> list[_Replica]:
        """Every generation's replicas of the workload."""
        return [replica for (wid, _), replica in self._replicas.items() if logical_id(wid) == workload_id]

    def _opened_node(self) -> NodeInventory:
        if self._node is None:
            raise BackendError("the local backend is not open; call open() first")
        return self._node

    def _lock_data_dir(self) -> None:
        """One server per data dir: two would both launch what the records say is not yet running."""
        path = self._settings.runs_dir / ".lock"
        lock_file = path.open("a+")
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock_file.seek(0)
            holder = lock_file.read().strip() or "unknown"
            lock_file.close()
            raise BackendError(
                f"another AstraGo server (pid {holder}) is using the data dir {self._settings.data_dir}; "
                "stop it first, or give this one another data dir (ASTRAGO_DATA_DIR)"
            ) from None
        lock_file.seek(0)
        lock_file.truncate()
        lock_file.write(f"{os.getpid()}\n")
        lock_file.flush()
        self._lock_file = lock_file

    def _unlock_data_dir(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()  # closing releases the flock
            self._lock_file = None


def spawn_runner(
    record: ReplicaRecord,
    env: dict[str, str],
    store: RecordStore,
    grace_s: float,
    sandbox: tuple[str, ...] | None = None,
) -> subprocess.Popen[bytes]:
    """Start the runner of `record` in a new session (it survives the server), output to the log file;
    with `sandbox` (the bwrap argv prefix of sandbox.py), the runner runs the command inside it."""
    log_path = Path(record.log_path)
    log_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    args = [
        sys.executable,
        "-I",
        "-S",
        str(_RUNNER_PATH),
        "--status-file",
        str(store.status_path(*record.key)),
        "--stop-file",
        str(store.stop_path(*record.key)),
        "--grace-s",
        str(grace_s),
    ]
    if record.max_runtime_s:
        args += ["--max-runtime-s", str(record.max_runtime_s)]
    if sandbox is not None:
        args += ["--sandbox", json.dumps(list(sandbox))]
    with open_private(log_path, "ab") as log_file:
        return subprocess.Popen(
            [*args, "--", *record.argv],
            cwd=record.working_dir,
            env={**env, LAUNCH_TOKEN_ENV: record.launch_token},
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def kill_orphaned_command(status: runner.RunnerStatus | None, sandboxed: bool = False) -> str:
    """Kill the process group of a command whose runner vanished: the replica is reported LOST, so its
    GPUs count as free again and nothing may keep using them. What to add to the LOST reason.

    A sandbox dies with its runner (`--die-with-parent`), possibly a moment after the runner: whether it
    is seen alive here is a race, so a started sandbox is reported the same way either way."""
    if status is None or status.child_pid is None or status.child_start_ticks is None:
        return ""
    identity = read_identity(status.child_pid)
    alive = identity is not None and identity.start_ticks == status.child_start_ticks
    if alive:
        kill_process_group(status.child_pid, signal.SIGKILL)
    if sandboxed and status.finished_at is None:
        return f"; its sandbox (pid {status.child_pid}) was killed with it"
    return f"; its command (pid {status.child_pid}) was still running and has been killed" if alive else ""


def interpreter_binds(hidden: tuple[Path, ...]) -> tuple[BindMount, ...]:
    """The Python that runs AstraGo (and the sandbox's init), read-only, where it lies in a hidden path (e.g.
    a virtualenv or pyenv in the server account's home, which workloads do not see)."""
    wanted = {Path(sys.base_prefix), Path(sys.prefix), Path(__file__).resolve().parents[2]}
    # A job has its own empty /tmp and /var/tmp: a checkout or virtualenv there is as unseen as a hidden one
    covered = (*hidden, Path("/tmp"), Path("/var/tmp"))
    binds = []
    for path in sorted({Path(os.path.realpath(p)) for p in wanted}):
        if any(path.is_relative_to(secret) for secret in covered) and path.is_dir():
            binds.append(BindMount(source=path, target=path, read_only=True))
    return tuple(binds)


def with_fallback_python(env: dict[str, str]) -> dict[str, str]:
    """The directory of the server's Python at the end of PATH: `python` works in a job (the quickstart's
    `astrago run -- python ...`) even where no other Python is on PATH; one on PATH before it wins."""
    fallback = os.path.dirname(sys.executable)
    if fallback not in env["PATH"].split(os.pathsep):
        env["PATH"] = f"{env['PATH']}{os.pathsep}{fallback}"
    return env


def give_tree(root: Path, user: SandboxUser) -> None:
    """Make `root` and everything under it (not following links) the workspace's own."""
    os.chown(root, user.uid, user.gid)
    for directory, subdirectories, files in os.walk(root):
        for name in (*subdirectories, *files):
            os.chown(os.path.join(directory, name), user.uid, user.gid, follow_symlinks=False)


def shared_binds(entries: list[str], hidden: tuple[Path, ...]) -> tuple[BindMount, ...]:
    """`sandbox_shared_paths` as bind mounts: existing absolute directories that hide nothing hidden."""
    binds = []
    for entry in entries:
        path, _, flag = entry.partition(":")
        source = Path(path)
        if flag not in ("", "ro") or not source.is_absolute() or not source.is_dir():
            raise BackendError(
                f"sandbox_shared_paths entry {entry!r} must be an existing absolute directory, "
                "optionally followed by ':ro'"
            )
        real = Path(os.path.realpath(source))
        for secret in hidden:
            if real.is_relative_to(secret) or secret.is_relative_to(real):
                raise BackendError(
                    f"sandbox_shared_paths entry {entry!r} would show workloads {secret}, "
                    "which they may not see"
                )
        binds.append(BindMount(source=real, target=real, read_only=flag == "ro"))
    return tuple(binds)


def open_private(path: Path, mode: str) -> IO[bytes]:
    """Open (creating it 0600, whatever the umask) a file only the server's account may read."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, mode)


def unreadable_observation(entry: UnreadableRecord) -> ReplicaObservation:
    return ReplicaObservation(
        workload_id=entry.workload_id,
        replica_index=entry.replica_index,
        state=ReplicaState.LOST,
        reason=f"its run record {entry.path} cannot be read ({entry.error}); it is not started again",
    )


__all__ = ["LocalBackend", "spawn_runner"]
