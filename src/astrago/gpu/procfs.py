"""Host processes as `/proc` shows them: start time, command line and container, cached per (pid, start time).

NVML reports host PIDs, so the exporter reads the host's `/proc` (`hostPID: true` or the host's `/proc`
mounted at `--proc-root`). A PID can be reused by a new process; the cache is keyed on the PID *and* its
start time (field 22 of `/proc/<pid>/stat`), so a reused PID is looked up afresh, never mislabelled."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from astrago.gpu.cgroup import NOT_IN_CONTAINER, ContainerRef, parse_proc_cgroup

COMMAND_LIMIT = 256


@dataclass(frozen=True, slots=True)
class HostProcess:
    pid: int
    start_time: int  # clock ticks since boot
    command: str  # `/proc/<pid>/cmdline`, arguments joined by spaces, capped at COMMAND_LIMIT characters
    container: ContainerRef


def read_start_time(stat_text: str) -> int:
    """Field 22 of `/proc/<pid>/stat`. The command (field 2) may hold spaces and parentheses, so fields are
    counted from the last ')'."""
    after_command = stat_text[stat_text.rindex(")") + 2 :].split()
    return int(after_command[19])


def format_cmdline(raw: bytes, limit: int = COMMAND_LIMIT) -> str:
    text = raw.rstrip(b"\0").replace(b"\0", b" ").decode("utf-8", errors="replace").strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _read_small(path: str) -> bytes:
    """One read of a small /proc file, without the buffered file object `open()` builds."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, 4096)
    finally:
        os.close(fd)


class ProcessTable:
    """Looks processes up under `proc_root`. Not thread-safe: one collector owns one table."""

    def __init__(self, proc_root: str | Path = "/proc", command_limit: int = COMMAND_LIMIT) -> None:
        self.proc_root = Path(proc_root)
        self._root = str(self.proc_root)
        self.command_limit = command_limit
        self._cache: dict[int, HostProcess] = {}

    def lookup(self, pid: int) -> HostProcess | None:
        """`None` when the PID is gone or not visible from this `/proc` (a container without hostPID)."""
        # Plain string paths: this runs for every GPU process on every collection.
        base = f"{self._root}/{pid}/"
        try:
            start_time = read_start_time(_read_small(base + "stat").decode(errors="replace"))
        except (OSError, ValueError, IndexError):
            self._cache.pop(pid, None)
            return None
        cached = self._cache.get(pid)
        if cached is not None and cached.start_time == start_time:
            return cached
        found = HostProcess(pid, start_time, self._command(base), self._container(base))
        self._cache[pid] = found
        return found

    def _command(self, base: str) -> str:
        try:
            with open(base + "cmdline", "rb") as cmdline:
                return format_cmdline(cmdline.read(), self.command_limit)
        except OSError:
            return ""

    @staticmethod
    def _container(base: str) -> ContainerRef:
        try:
            with open(base + "cgroup") as cgroup:
                return parse_proc_cgroup(cgroup.read())
        except OSError:
            return NOT_IN_CONTAINER

    def forget_all_but(self, pids: set[int]) -> None:
        """Drop cache entries of PIDs no longer on any GPU: the cache stays as small as the process list."""
        for pid in self._cache.keys() - pids:
            del self._cache[pid]

    def __len__(self) -> int:
        return len(self._cache)
