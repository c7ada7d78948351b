"""A GPU source that plays a script: per-GPU and per-process utilisation and memory over time.

Simulated GPUs have no utilisation of their own; a script gives them some, so that tests and demos can make
a workload's GPUs busy or idle (`ASTRAGO_GPU_SOURCE=scripted:PATH`). The script is YAML or JSON:

```yaml
loop_s: 600            # optional: the timeline repeats every 600 s
gpus:
  - index: 0
    name: NVIDIA A100-SXM4-80GB   # optional
    memory_total_mib: 81920       # optional
    temperature_celsius: 45       # optional, like power_watts, healthy, utilization, memory_used_mib
    mig: false                    # true: per-process utilisation is not reported (as on MIG)
processes:
  - gpu: 0
    select: {workload: wl-1234, replica: 0}   # or {command: "a substring of the command line"} or {pid: N}
    utilization: [[0, 90], [60, 3]]           # 90 % from t=0 s, then 3 % from t=60 s
    memory_mib: 20000                         # a number, or a timeline like utilization
```

Times are seconds since the script file was last written, so rewriting it restarts the timeline, and a
restarted server continues where it was. A number is a constant; a timeline is a list of
`[seconds, value]` steps, each holding until the next. The file is re-read when it changes.

Selectors name processes on this host: `pid`; `command` (the outermost process whose command line holds the
text); `workload` (+ `replica`) (the outermost process whose environment says `ASTRAGO_WORKLOAD_ID`, and
`ASTRAGO_REPLICA_INDEX`). A selector that matches nothing reports nothing: the workload is not running.
A GPU's utilisation and memory, when not scripted, are the sums of its processes'."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from astrago.gpu.model import MIB, GpuDevice, GpuProcess, ProcessKind, SourceReading, clamp_percent
from astrago.gpu.procfs import format_cmdline, read_start_time
from astrago.gpu.sources.base import SourceFailed

Step = tuple[Annotated[float, Field(ge=0)], Annotated[float, Field(ge=0)]]
Timeline = float | list[Step]


class ScriptError(ValueError):
    """The script cannot be read; the message says where and why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProcessSelector(_Strict):
    pid: int | None = Field(None, ge=1)
    command: str | None = Field(None, min_length=1)
    workload: str | None = Field(None, min_length=1)
    replica: int | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _one_kind(self) -> ProcessSelector:
        kinds = [kind for kind in (self.pid, self.command, self.workload) if kind is not None]
        if len(kinds) != 1:
            raise ValueError("select exactly one of pid, command or workload")
        if self.replica is not None and self.workload is None:
            raise ValueError("replica selects among a workload's processes; give workload too")
        return self


class ScriptedGpu(_Strict):
    index: int = Field(ge=0)
    name: str = "Scripted GPU"
    memory_total_mib: int = Field(0, ge=0)
    utilization: Timeline | None = None
    memory_used_mib: Timeline | None = None
    temperature_celsius: Timeline | None = None
    power_watts: Timeline | None = None
    healthy: bool = True
    mig: bool = False


class ScriptedProcess(_Strict):
    gpu: int = Field(ge=0)
    select: ProcessSelector
    utilization: Timeline | None = None
    memory_mib: Timeline | None = None
    name: str = "scripted"


class Script(_Strict):
    loop_s: float | None = Field(None, gt=0)
    gpus: list[ScriptedGpu] = Field(default_factory=list)
    processes: list[ScriptedProcess] = Field(default_factory=list)

    @model_validator(mode="after")
    def _known_gpus(self) -> Script:
        indices = [gpu.index for gpu in self.gpus]
        if len(set(indices)) != len(indices):
            raise ValueError("a GPU index appears twice in gpus")
        for process in self.processes:
            if process.gpu not in indices:
                raise ValueError(f"a process is on GPU {process.gpu}, which gpus does not declare")
        return self


def value_at(timeline: Timeline | None, t: float) -> float | None:
    """The value of `timeline` at `t` seconds: the last step at or before `t` (None before the first)."""
    if timeline is None or isinstance(timeline, int | float):
        return None if timeline is None else float(timeline)
    current: float | None = None
    for start, value in sorted(timeline):
        if start > t:
            break
        current = value
    return current


def load_script(path: Path) -> Script:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ScriptError(f"cannot read the GPU script {path}: {exc}") from exc
    try:
        data: Any = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        kind = "JSON" if path.suffix == ".json" else "YAML"
        raise ScriptError(f"the GPU script {path} is not valid {kind}: {exc}") from exc
    try:
        return Script.model_validate(data or {})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'script'}: {error['msg']}" for error in exc.errors()
        )
        raise ScriptError(f"the GPU script {path} is invalid: {problems}") from exc


@dataclass(frozen=True, slots=True)
class _HostProcess:
    pid: int
    ppid: int
    start_time: int


class ScriptedSource:
    name = "scripted"

    def __init__(self, path: str | Path, proc_root: str | Path = "/proc") -> None:
        self.path = Path(path)
        self.proc_root = Path(proc_root)
        self._script: Script | None = None
        self._loaded_mtime: float | None = None
        self._script_or_fail()  # a bad path or script is a usage error at start, not a failed reading

    def close(self) -> None:
        """Nothing stays open between readings."""

    def read(self) -> SourceReading:
        try:
            script, written = self._script_or_fail()
        except ScriptError as exc:
            raise SourceFailed(str(exc)) from exc
        t = time.time() - written
        if script.loop_s is not None:
            t %= script.loop_s
        processes = list(self._processes(script, t))
        devices = [self._device(gpu, processes, t) for gpu in script.gpus]
        return SourceReading(devices=devices, processes=processes)

    def _script_or_fail(self) -> tuple[Script, float]:
        try:
            mtime = self.path.stat().st_mtime
        except OSError as exc:
            raise ScriptError(f"cannot read the GPU script {self.path}: {exc}") from exc
        if self._script is None or mtime != self._loaded_mtime:
            self._script = load_script(self.path)
            self._loaded_mtime = mtime
        return self._script, mtime

    def _processes(self, script: Script, t: float) -> Iterable[GpuProcess]:
        if not script.processes:
            return
        table = self._process_table() if any(p.select.pid is None for p in script.processes) else {}
        mig = {gpu.index for gpu in script.gpus if gpu.mig}
        for entry in script.processes:
            memory = value_at(entry.memory_mib, t)
            utilization = None if entry.gpu in mig else clamp_percent(value_at(entry.utilization, t))
            for pid in self._select(entry.select, table):
                yield GpuProcess(
                    pid=pid,
                    gpu_index=entry.gpu,
                    kind=ProcessKind.COMPUTE,
                    name=entry.name,
                    used_memory_bytes=None if memory is None else int(memory * MIB),
                    # MIG: a scripted MIG GPU reports its processes on GPU instance 1, compute instance 0
                    gpu_instance_id=1 if entry.gpu in mig else None,
                    compute_instance_id=0 if entry.gpu in mig else None,
                    sm_utilization_percent=utilization,
                )

    def _device(self, gpu: ScriptedGpu, processes: list[GpuProcess], t: float) -> GpuDevice:
        own = [p for p in processes if p.gpu_index == gpu.index]
        utilization = value_at(gpu.utilization, t)
        if utilization is None and not gpu.mig:
            shares = [p.sm_utilization_percent for p in own if p.sm_utilization_percent is not None]
            utilization = sum(shares) if shares else 0.0
        memory_mib = value_at(gpu.memory_used_mib, t)
        if memory_mib is None:
            memory_mib = sum(p.used_memory_bytes or 0 for p in own) / MIB
        return GpuDevice(
            index=gpu.index,
            uuid=None,
            name=gpu.name,
            memory_total_mib=gpu.memory_total_mib,
            mig_enabled=gpu.mig,
            memory_used_mib=int(memory_mib),
            utilization_percent=clamp_percent(utilization),
            temperature_celsius=value_at(gpu.temperature_celsius, t),
            power_watts=value_at(gpu.power_watts, t),
            healthy=gpu.healthy,
        )

    def _select(self, selector: ProcessSelector, table: dict[int, _HostProcess]) -> list[int]:
        if selector.pid is not None:
            return [selector.pid] if (self.proc_root / str(selector.pid)).exists() else []
        matching = {pid for pid in table if self._matches(selector, pid)}
        return sorted(pid for pid in matching if not _has_ancestor_in(pid, matching, table))

    def _matches(self, selector: ProcessSelector, pid: int) -> bool:
        base = self.proc_root / str(pid)
        if selector.command is not None:
            try:
                return selector.command in format_cmdline((base / "cmdline").read_bytes(), limit=1 << 20)
            except OSError:
                return False
        try:
            environ = (base / "environ").read_bytes().split(b"\0")
        except OSError:  # another user's process, or gone
            return False
        wanted = {f"ASTRAGO_WORKLOAD_ID={selector.workload}".encode()}
        if selector.replica is not None:
            wanted.add(f"ASTRAGO_REPLICA_INDEX={selector.replica}".encode())
        return wanted <= set(environ)

    def _process_table(self) -> dict[int, _HostProcess]:
        table: dict[int, _HostProcess] = {}
        for entry in os.scandir(self.proc_root):
            if not entry.name.isdigit():
                continue
            try:
                stat = (Path(entry.path) / "stat").read_text(errors="replace")
                ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
                table[int(entry.name)] = _HostProcess(int(entry.name), ppid, read_start_time(stat))
            except (OSError, ValueError, IndexError):
                continue
        return table


def _has_ancestor_in(pid: int, group: set[int], table: dict[int, _HostProcess]) -> bool:
    seen: set[int] = set()
    current = table[pid].ppid if pid in table else 0
    while current > 1 and current not in seen:
        if current in group:
            return True
        seen.add(current)
        parent = table.get(current)
        current = parent.ppid if parent is not None else 0
    return False
