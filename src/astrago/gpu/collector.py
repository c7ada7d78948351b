"""One collection: read the source, attribute every process to its command, container and pod, and keep
the result as an immutable snapshot. Scrapes and `gpu ls` only ever read snapshots."""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field

from astrago.gpu.kube import PodDirectory
from astrago.gpu.model import GpuDevice, GpuHealthSignals, GpuProcess, MigDevice, SourceError
from astrago.gpu.procfs import ProcessTable
from astrago.gpu.sources.base import GpuSource, SourceFailed

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AttributedProcess:
    """A GPU process with what the host knows about it. Pod fields are "" outside pods (never guessed)."""

    process: GpuProcess
    device: GpuDevice
    mig: MigDevice | None
    command: str
    in_proc: bool  # False: the PID is not visible under the proc root (gone, or no hostPID)
    pod_uid: str = ""
    namespace: str = ""
    pod: str = ""
    container: str = ""
    container_id: str = ""

    @property
    def capacity_bytes(self) -> int | None:
        """Memory of what the process runs on: its MIG device (GPU instance), else the whole GPU."""
        if self.mig is not None:
            return self.mig.memory_total_bytes
        return self.device.memory_total_bytes or None


@dataclass(frozen=True, slots=True)
class Snapshot:
    source: str
    collected_at: float  # Unix time the collection finished
    duration_s: float
    devices: tuple[GpuDevice, ...] = ()
    processes: tuple[AttributedProcess, ...] = ()
    errors: tuple[SourceError, ...] = ()
    ok: bool = True  # False: the source failed as a whole; devices and processes are empty
    health: tuple[GpuHealthSignals, ...] = ()  # per GPU, what the source tells about its health


@dataclass(slots=True)
class CollectorHealth:
    collections: int = 0
    errors: Counter[str] = field(default_factory=Counter)  # by stage
    last_success: float | None = None
    last_duration_s: float | None = None
    pods_current: bool | None = None  # None: no pod directory configured
    xids: Counter[tuple[int, int]] = field(default_factory=Counter)  # (GPU index, Xid) → times seen
    # When this exporter process started: a reader tells a restart (its counters began again) by it.
    started_at: float = field(default_factory=time.time)


class Collector:
    """`processes=None` looks nothing up on this host: right for a replayed recording, whose PIDs belong to
    another machine."""

    def __init__(
        self, source: GpuSource, processes: ProcessTable | None = None, pods: PodDirectory | None = None
    ) -> None:
        self.source = source
        self.processes = processes
        self.pods = pods
        self.health = CollectorHealth()
        self.snapshot: Snapshot | None = None

    def collect(self) -> Snapshot:
        started = time.perf_counter()
        try:
            reading = self.source.read()
        except SourceFailed as exc:
            log.warning("GPU collection failed: %s", exc)
            return self._finish(started, (), (), (SourceError("source", str(exc)),), ok=False)
        devices = {device.index: device for device in reading.devices}
        attributed = tuple(
            self._attribute(proc, devices[proc.gpu_index])
            for proc in reading.processes
            if proc.gpu_index in devices
        )
        if self.processes is not None:
            self.processes.forget_all_but({proc.pid for proc in reading.processes})
        for event in reading.events:
            self.health.xids[(event.gpu_index, event.xid)] += 1
        return self._finish(
            started,
            tuple(reading.devices),
            attributed,
            tuple(reading.errors),
            ok=True,
            health=tuple(reading.health),
        )

    def _finish(
        self,
        started: float,
        devices: tuple[GpuDevice, ...],
        processes: tuple[AttributedProcess, ...],
        errors: tuple[SourceError, ...],
        ok: bool,
        health: tuple[GpuHealthSignals, ...] = (),
    ) -> Snapshot:
        now = time.time()
        snapshot = Snapshot(
            source=self.source.name,
            collected_at=now,
            duration_s=time.perf_counter() - started,
            devices=devices,
            processes=processes,
            errors=errors,
            ok=ok,
            health=health,
        )
        self.health.collections += 1
        self.health.last_duration_s = snapshot.duration_s
        self.health.pods_current = self.pods.is_current() if self.pods is not None else None
        for error in errors:
            self.health.errors[error.stage] += 1
        if ok:
            self.health.last_success = now
        self.snapshot = snapshot
        return snapshot

    def _attribute(self, proc: GpuProcess, device: GpuDevice) -> AttributedProcess:
        mig = device.mig_device(*proc.mig_key) if proc.mig_key is not None else None
        host = self.processes.lookup(proc.pid) if self.processes is not None else None
        if host is None:
            return AttributedProcess(proc, device, mig, command=proc.name, in_proc=False)
        ref = host.container
        pod = self.pods.pod(ref.pod_uid) if self.pods is not None and ref.pod_uid else None
        return AttributedProcess(
            proc,
            device,
            mig,
            command=host.command or proc.name,
            in_proc=True,
            pod_uid=ref.pod_uid or "",
            namespace=pod.namespace if pod else "",
            pod=pod.name if pod else "",
            container=pod.container_name(ref.container_id) if pod else "",
            container_id=ref.container_id or "",
        )
