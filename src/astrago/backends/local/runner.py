"""The supervisor that runs one replica: `python -m astrago.backends.local.runner ... -- COMMAND...`.

The server starts the runner in a new session (so it outlives a crash of the server); the runner starts
the real command in a process group of its own, waits for it and writes the outcome to the status file
atomically. Because the status file, not the server, holds the exit code, the code survives any number of
server restarts, and a re-adopted replica (no longer the server's child) still reports how it ended.

The runner also owns stopping, so a stop or a max-runtime limit keeps working while the server is down:
- SIGTERM/SIGINT/SIGHUP to the runner = "stop": it reads the reason and grace period from the stop file
  (written by the server first), sends SIGTERM to the command's process group, and SIGKILL after the grace.
- At `--max-runtime-s` it stops the command the same way, with reason "exceeded max runtime of Ns".
- When the command ends, whatever it left behind in its process group is killed, so no stray process keeps
  holding a GPU; then the status file gets its final content and the runner exits.

Sandboxed (`--sandbox ARGV_JSON`, see sandbox.py), the runner runs bubblewrap as its child with the stop
signals ignored (only the command inside gets them back), learns the sandbox's PID 1 from bubblewrap's
`--json-status-fd`, and reads how the command ended from the sandbox init's report pipe. bubblewrap dies
with the runner (a death signal armed before it is exec'd), never with the server.

Runs by file path as `python -I -S runner.py`: standard library only (the job's PYTHONPATH or a missing
site-packages cannot break it), and quick to start. The server imports it for the file formats."""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import errno
import functools
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import IO, Any

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_POLL_WITHOUT_PIDFD_S = 0.25


@dataclass(slots=True)
class RunnerStatus:
    """What the runner knows about its command; `finished_at` is set once, with the outcome."""

    runner_pid: int
    child_pid: int | None = None
    child_start_ticks: int | None = None  # with child_pid, the command's identity (see process.py)
    started_at: float | None = None
    finished_at: float | None = None
    exit_code: int | None = None  # set when the command exited by itself
    signal: int | None = None  # set when the command was killed by a signal
    stop_reason: str | None = None  # set when the runner stopped the command (stop request, max runtime)
    error: str | None = None  # set when the command could not be started at all
    sandbox_pid: int | None = None  # PID 1 of the replica's sandbox as the host sees it (for exec)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunnerStatus:
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})

    def save(self, path: Path) -> None:
        write_json_atomic(path, asdict(self))


@dataclass(frozen=True, slots=True)
class StopRequest:
    reason: str
    grace_s: float

    @classmethod
    def read(cls, path: Path) -> StopRequest | None:
        data = read_json(path)
        if data is None:
            return None
        return cls(reason=str(data["reason"]), grace_s=float(data["grace_s"]))

    def save(self, path: Path) -> None:
        write_json_atomic(path, {"reason": self.reason, "grace_s": self.grace_s, "requested_at": time.time()})


class Supervisor:
    def __init__(
        self,
        command: list[str],
        status_path: Path,
        stop_path: Path,
        grace_s: float,
        max_runtime_s: float | None,
        sandbox: list[str] | None = None,
    ) -> None:
        self.command = command
        self.sandbox = sandbox
        self._sandbox_status: IO[bytes] | None = None  # bwrap's JSON status lines, open until it exits
        self._sandbox_report: int | None = None  # the sandbox init's report of how the command ended
        self.status_path = status_path
        self.stop_path = stop_path
        self.default_grace_s = grace_s
        self.max_runtime_s = max_runtime_s
        self.status = RunnerStatus(runner_pid=os.getpid())
        self._stop_signalled = False
        self._stopping = False
        self._kill_at: float | None = None
        self._wake_read, wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_write)  # a signal wakes the select() below at once
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._on_stop_signal)

    def _on_stop_signal(self, signum: int, frame: object) -> None:
        self._stop_signalled = True

    def run(self) -> int:
        if self._stop_signalled:  # asked to stop before the command even started
            self._finish(stop_reason=self._read_stop_reason(), error="stopped before the command started")
            return 0
        try:
            child = self._spawn()
        except OSError as exc:
            code = 127 if exc.errno == errno.ENOENT else 126  # as a shell reports them
            message = f"cannot run {self.command[0]!r}: {exc.strerror}"
            log(message)
            self._finish(exit_code=code, error=message)
            return 0
        self.status.child_pid = child.pid
        self.status.child_start_ticks = start_ticks(child.pid)
        self.status.started_at = time.time()
        if self._sandbox_status is not None:
            self.status.sandbox_pid = _read_sandbox_pid(self._sandbox_status)
        self.status.save(self.status_path)
        self._supervise(child)
        return 0

    def _spawn(self) -> subprocess.Popen[bytes]:
        if self.sandbox is None:
            return subprocess.Popen(self.command, process_group=0, stdin=subprocess.DEVNULL)
        status_read, status_write = os.pipe()
        report_read, report_write = os.pipe()
        fds = {"{status_fd}": str(status_write), "{report_fd}": str(report_write)}
        prefix = [fds.get(arg, arg) for arg in self.sandbox]
        prepare = functools.partial(_prepare_sandbox_child, os.getpid(), _prctl())
        try:
            # The stop signals are ignored by bwrap and the sandbox's init (which gives them back to the
            # command only): a SIGTERM to the group must not kill bwrap, whose death ends the sandbox at once.
            return subprocess.Popen(
                [*prefix, *self.command],
                process_group=0,
                stdin=subprocess.DEVNULL,
                pass_fds=(status_write, report_write),
                preexec_fn=prepare,  # the runner is single-threaded, so this is safe
            )
        finally:
            os.close(status_write)
            os.close(report_write)
            self._sandbox_status = os.fdopen(status_read, "rb")
            self._sandbox_report = report_read

    def _supervise(self, child: subprocess.Popen[bytes]) -> None:
        started = time.monotonic()
        deadline = started + self.max_runtime_s if self.max_runtime_s else None
        try:
            pidfd: int | None = os.pidfd_open(child.pid)
        except OSError:
            pidfd = None
        while child.poll() is None:
            timeouts = [t - time.monotonic() for t in (deadline, self._kill_at) if t is not None]
            if pidfd is None:
                timeouts.append(_POLL_WITHOUT_PIDFD_S)
            watched = [self._wake_read] + ([pidfd] if pidfd is not None else [])
            select.select(watched, [], [], max(0.0, min(timeouts)) if timeouts else None)
            self._drain_wakeups()
            if child.poll() is not None:
                break
            now = time.monotonic()
            if self._stop_signalled and not self._stopping:
                request = StopRequest.read(self.stop_path)
                self._begin_stop(
                    child.pid,
                    request.reason if request else None,
                    request.grace_s if request else self.default_grace_s,
                )
            if deadline is not None and now >= deadline and not self._stopping:
                self._begin_stop(
                    child.pid, f"exceeded max runtime of {self.max_runtime_s:g}s", self.default_grace_s
                )
            if self._kill_at is not None and now >= self._kill_at:
                log(f"still running after the grace period: SIGKILL to process group {child.pid}")
                kill_group(child.pid, signal.SIGKILL)
                self._kill_at = None
        returncode = child.wait()
        kill_group(child.pid, signal.SIGKILL)  # strays the command left in its group
        if self._sandbox_status is not None:
            self._sandbox_status.close()
        report = _read_report(self._sandbox_report) if self._sandbox_report is not None else None
        if report is not None:  # the sandbox's init saw the command end: exact, unlike bwrap's exit code
            self._finish(
                exit_code=report.get("exit_code"),
                signal_number=report.get("signal"),
                stop_reason=self.status.stop_reason,
                error=report.get("error"),
            )
        elif returncode < 0:
            self._finish(signal_number=-returncode, stop_reason=self.status.stop_reason)
        else:
            self._finish(exit_code=returncode, stop_reason=self.status.stop_reason)

    def _begin_stop(self, group: int, reason: str | None, grace_s: float) -> None:
        self._stopping = True
        self.status.stop_reason = reason
        log(f"stopping ({reason or 'SIGTERM received'}): SIGTERM to the group, SIGKILL in {grace_s:g}s")
        kill_group(group, signal.SIGTERM)
        self._kill_at = time.monotonic() + max(0.0, grace_s)

    def _read_stop_reason(self) -> str | None:
        request = StopRequest.read(self.stop_path)
        return request.reason if request else None

    def _drain_wakeups(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self._wake_read, 512):
                pass

    def _finish(
        self,
        *,
        exit_code: int | None = None,
        signal_number: int | None = None,
        stop_reason: str | None = None,
        error: str | None = None,
    ) -> None:
        self.status.exit_code = exit_code
        self.status.signal = signal_number
        self.status.stop_reason = stop_reason
        self.status.error = error
        self.status.finished_at = time.time()
        self.status.save(self.status_path)


def _prepare_sandbox_child(runner_pid: int, prctl: Any) -> None:
    """In bwrap's process, between fork and exec: ignore the stop signals, and die with the runner.

    bwrap's own `--die-with-parent` is armed only once bwrap runs, so a runner killed in the instant
    before would leave the sandbox running with nobody to stop it or record its end. The death signal is
    armed here, before exec (it survives exec), and then the runner is checked to be still the parent: had
    it died before the signal was armed, the signal would never come. It ties bwrap to the runner only; the
    runner itself has no such tie to the server, so jobs still outlive a server restart by design."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    if prctl is not None and prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        os.write(2, b"[astrago] cannot tie the sandbox to its runner (prctl PR_SET_PDEATHSIG failed)\n")
        os._exit(126)
    if os.getppid() != runner_pid:  # the runner died before the death signal was armed
        os._exit(126)


def _prctl() -> Any:
    """libc's prctl, looked up before fork (never load a library between fork and exec); None off Linux."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    prctl.restype = ctypes.c_int
    return prctl


def _read_sandbox_pid(status: IO[bytes]) -> int | None:
    """The host pid of the sandbox's PID 1, from bwrap's first JSON status line (None if bwrap failed)."""
    line = status.readline()
    try:
        pid = json.loads(line).get("child-pid")
    except ValueError:
        return None
    return pid if isinstance(pid, int) else None


def _read_report(fd: int) -> dict[str, Any] | None:
    """What the sandbox's init wrote before it exited (it exits before bwrap does, so this never waits)."""
    os.set_blocking(fd, False)
    try:
        data = os.read(fd, 65536)
    except BlockingIOError:
        data = b""
    finally:
        os.close(fd)
    try:
        report = json.loads(data) if data else None
    except ValueError:
        return None
    # The init writes it, but a job running as the server's own account could reach that pipe too: accept
    # only a well-formed report, else fall back to bubblewrap's exit status.
    types = {"exit_code": int, "signal": int, "error": str}
    if not isinstance(report, dict) or not report.keys() <= types.keys():
        return None
    if not all(isinstance(report[key], kind) for key, kind in types.items() if key in report):
        return None
    return report


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    write_bytes_atomic(path, json.dumps(data, indent=1, sort_keys=True).encode() + b"\n")


def write_bytes_atomic(path: Path, payload: bytes) -> None:
    """Write a temporary file beside `path`, fsync, rename: readers see the old or the new content, never a
    torn write, whatever instant the writer dies (kill -9, power loss)."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(payload)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(directory)  # makes the rename itself durable
    finally:
        os.close(directory)


def read_json(path: Path) -> dict[str, Any] | None:
    """The object stored at `path`, or None when there is no such file."""
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    if not isinstance(data, dict):
        raise ValueError(f"{path} does not hold a JSON object")
    return data


def start_ticks(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat: with the pid, what tells this process apart from a later one."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat[stat.rindex(")") + 2 :].split()[19])


def kill_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def log(message: str) -> None:
    """A line in the replica's log (the runner's stderr is the log file), marked as AstraGo's."""
    sys.stderr.write(f"[astrago] {message}\n")
    sys.stderr.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m astrago.backends.local.runner")
    parser.add_argument("--status-file", type=Path, required=True)
    parser.add_argument("--stop-file", type=Path, required=True)
    parser.add_argument("--grace-s", type=float, required=True)
    parser.add_argument("--max-runtime-s", type=float, default=None)
    parser.add_argument("--sandbox", type=json.loads, default=None, help="the bwrap argv prefix, as JSON")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given after --")
    os.umask(0o022)  # the server's umask is 077; a workload's files follow the customary default
    supervisor = Supervisor(
        command, args.status_file, args.stop_file, args.grace_s, args.max_runtime_s, args.sandbox
    )
    return supervisor.run()


if __name__ == "__main__":
    sys.exit(main())
