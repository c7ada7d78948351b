"""Processes as the local backend sees them: a durable identity and an async handle.

A pid alone is not an identity: pids are reused. A process is identified by (pid, start time in clock
ticks since boot, boot id). The start time is read from `/proc/<pid>/stat` (field 22), which, unlike a
wall-clock `create_time`, cannot drift when the clock is adjusted between two server runs. The boot id
tells a reboot apart from a vanished process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

_PROC = Path("/proc")
_BOOT_ID_PATH = _PROC / "sys/kernel/random/boot_id"
_EXIT_POLL_S = 0.25  # only where pidfd_open is missing (Linux < 5.3)


@dataclass(frozen=True, slots=True)
class ProcessIdentity:
    pid: int
    start_ticks: int
    boot_id: str


def current_boot_id() -> str:
    try:
        return _BOOT_ID_PATH.read_text().strip()
    except OSError:
        return ""


def read_identity(pid: int, *, include_exited: bool = False) -> ProcessIdentity | None:
    """The identity of live process `pid`; None when it is gone, or has exited and awaits reaping (a
    zombie) unless `include_exited` (a zombie's pid cannot be reused, so its identity is still sound)."""
    fields = _stat_fields(pid)
    if fields is None or (fields[0] in ("Z", "X") and not include_exited):
        return None
    return ProcessIdentity(pid=pid, start_ticks=int(fields[19]), boot_id=current_boot_id())


def _stat_fields(pid: int) -> list[str] | None:
    """Fields 3 onwards of /proc/<pid>/stat (state, ppid, pgrp, session, ...)."""
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may itself hold spaces or parentheses.
    return stat[stat.rindex(")") + 2 :].split()


def find_session_leader_with_env(name: str, value: str) -> ProcessIdentity | None:
    """The live session leader whose environment holds `name=value` (how a runner whose pid was never
    recorded is found again: the server gives each runner a unique launch token)."""
    marker = f"{name}={value}".encode()
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker not in environ.split(b"\0"):
            continue
        pid = int(entry.name)
        fields = _stat_fields(pid)
        if fields is not None and int(fields[3]) == pid:
            return read_identity(pid)
    return None


def is_same_process_alive(identity: ProcessIdentity) -> bool:
    return read_identity(identity.pid) == identity


def describe_signal(signum: int) -> str:
    """'9 (SIGKILL)'."""
    try:
        return f"{signum} ({signal.Signals(signum).name})"
    except ValueError:
        return str(signum)


def kill_process_group(pgid: int, signum: int) -> bool:
    """Signal every process of group `pgid`; False when the group no longer exists."""
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        return False
    return True


class ProcessHandle:
    """A live process this server launched or adopted: signal it safely and await its exit.

    With a pidfd (Linux ≥ 5.3) signals cannot reach a recycled pid and the exit is delivered by the event
    loop without polling; without one, the identity is re-checked before each signal and every 0.25 s."""

    def __init__(self, identity: ProcessIdentity, popen: subprocess.Popen[bytes] | None = None) -> None:
        self.identity = identity
        self._popen = popen  # set when this server is the parent: the exit must be reaped
        self._pidfd = self._open_pidfd(identity)

    @property
    def pid(self) -> int:
        return self.identity.pid

    @staticmethod
    def _open_pidfd(identity: ProcessIdentity) -> int | None:
        try:
            pidfd = os.pidfd_open(identity.pid)
        except (AttributeError, OSError):
            return None
        # Opened after the identity was read: make sure the pid was not recycled in between.
        if read_identity(identity.pid, include_exited=True) != identity:
            os.close(pidfd)
            return None
        return pidfd

    def send_signal(self, signum: int) -> bool:
        """Deliver `signum` to this process only; False when it has already ended."""
        try:
            if self._pidfd is not None:
                signal.pidfd_send_signal(self._pidfd, signum)
            elif is_same_process_alive(self.identity):
                os.kill(self.pid, signum)
            else:
                return False
        except ProcessLookupError:
            return False
        return True

    async def wait_exit(self) -> int | None:
        """Wait until the process ends; its exit status when this server is its parent, else None."""
        if self._pidfd is not None:
            await _wait_readable(self._pidfd)
        else:
            while self._alive_without_pidfd():  # noqa: ASYNC110 - nothing can set an event on exit here
                await asyncio.sleep(_EXIT_POLL_S)
        if self._popen is not None:
            return self._popen.wait()  # already ended: reaps the zombie without blocking
        return None

    def _alive_without_pidfd(self) -> bool:
        if self._popen is not None:
            return self._popen.poll() is None
        return is_same_process_alive(self.identity)

    def close(self) -> None:
        if self._pidfd is not None:
            with contextlib.suppress(OSError):
                os.close(self._pidfd)
            self._pidfd = None


async def _wait_readable(fd: int) -> None:
    """A pidfd becomes readable when its process exits."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()

    def on_readable() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(fd, on_readable)
    try:
        await ready
    finally:
        loop.remove_reader(fd)
