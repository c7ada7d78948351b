"""A server under test: started as its own process group, timed until ready, measured, and stopped."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import psutil

READY_TIMEOUT_S = 180.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """One server subprocess; its output goes to a log file so a failed start can be diagnosed."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str], log_path: Path) -> None:
        self.argv = list(argv)
        self.env = dict(env)
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError("the server is not started")
        return self._process.pid

    def start_and_wait(self, is_ready: Callable[[], bool]) -> float:
        """Start the server; return the seconds until `is_ready()` first holds."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            started = time.perf_counter()
            # A process group of its own, so stopping it also stops whatever the server spawned.
            self._process = subprocess.Popen(
                self.argv, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        while time.perf_counter() - started < READY_TIMEOUT_S:
            if self._process.poll() is not None:
                code = self._process.returncode
                raise RuntimeError(f"{self.argv[0]} exited with {code}; see {self.log_path}")
            if is_ready():
                return time.perf_counter() - started
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.argv[0]} was not ready after {READY_TIMEOUT_S:.0f} s; see {self.log_path}")

    def cpu_seconds(self) -> float:
        """CPU time (user + system) of the server and every process it started."""
        root = psutil.Process(self.pid)
        total = 0.0
        for process in [root, *root.children(recursive=True)]:
            try:
                times = process.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
        return total

    def stop(self, grace_s: float = 15.0) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        os.killpg(self._process.pid, signal.SIGTERM)
        try:
            self._process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait()


def stop_processes_mentioning(marker: str) -> None:
    """Stop the process groups whose command line names `marker` (e.g. a data dir of this run)."""
    for process in psutil.process_iter(["pid", "cmdline"]):
        if any(marker in part for part in process.info["cmdline"] or ()):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(os.getpgid(process.info["pid"]), signal.SIGTERM)
