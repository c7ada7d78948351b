"""The runner as the server starts it (`python -I -S runner.py`), supervising real commands."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from astrago.backends.local import runner
from astrago.backends.local.runner import RunnerStatus, StopRequest, read_json


class RunnerFiles:
    def __init__(self, directory: Path) -> None:
        self.status = directory / "0.status.json"
        self.stop = directory / "0.stop.json"
        self.log = directory / "0.log"

    def start(
        self,
        *command: str,
        grace_s: float = 5.0,
        max_runtime_s: float | None = None,
        sandbox: list[str] | None = None,
    ) -> subprocess.Popen[bytes]:
        args = [sys.executable, "-I", "-S", runner.__file__, "--status-file", str(self.status)]
        args += ["--stop-file", str(self.stop), "--grace-s", str(grace_s)]
        if max_runtime_s is not None:
            args += ["--max-runtime-s", str(max_runtime_s)]
        if sandbox is not None:
            args += ["--sandbox", json.dumps(sandbox)]
        with self.log.open("ab") as log:
            return subprocess.Popen([*args, "--", *command], stdout=log, stderr=subprocess.STDOUT)

    def run(self, *command: str, **options: float) -> RunnerStatus:
        process = self.start(*command, **options)
        assert process.wait(timeout=30) == 0
        return self.final_status()

    def final_status(self) -> RunnerStatus:
        data = read_json(self.status)
        assert data is not None
        status = RunnerStatus.from_json(data)
        assert status.finished_at is not None
        return status

    def wait_for_output(self, process: subprocess.Popen[bytes], text: str) -> None:
        deadline = time.monotonic() + 20
        while text not in self.log.read_text():
            assert process.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, f"no {text!r} in the log"
            time.sleep(0.02)


@pytest.fixture
def files(tmp_path: Path) -> RunnerFiles:
    return RunnerFiles(tmp_path)


def test_the_exit_code_is_recorded(files: RunnerFiles) -> None:
    status = files.run(sys.executable, "-c", "print('hello'); raise SystemExit(3)")
    assert (status.exit_code, status.signal, status.stop_reason) == (3, None, None)
    assert status.child_pid is not None
    assert status.started_at is not None
    assert files.log.read_text() == "hello\n"


def test_a_command_that_cannot_start_is_code_127_with_the_cause(files: RunnerFiles) -> None:
    status = files.run("/nonexistent/trainer")
    assert status.exit_code == 127
    assert status.error == "cannot run '/nonexistent/trainer': No such file or directory"
    assert "[astrago] cannot run '/nonexistent/trainer'" in files.log.read_text()


def test_max_runtime_stops_the_command(files: RunnerFiles) -> None:
    status = files.run("sleep", "30", max_runtime_s=0.2)
    assert status.stop_reason == "exceeded max runtime of 0.2s"
    assert status.signal == signal.SIGTERM


def test_a_stop_request_uses_its_reason_and_grace(files: RunnerFiles) -> None:
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
        "print('ready', flush=True); time.sleep(30)"
    )
    process = files.start(sys.executable, "-c", code, grace_s=30)
    files.wait_for_output(process, "ready")
    StopRequest(reason="cancelled by bob", grace_s=0.1).save(files.stop)
    process.send_signal(signal.SIGTERM)

    assert process.wait(timeout=10) == 0
    status = files.final_status()
    assert (status.stop_reason, status.signal) == ("cancelled by bob", signal.SIGKILL)
    assert "SIGKILL to process group" in files.log.read_text()


# Stands in for bubblewrap in the instant before bwrap arms its own `--die-with-parent`: it never arms a
# death signal itself, writes its pid, and would stay for minutes.
_BWRAP_BEFORE_DIE_WITH_PARENT = (
    "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(300)"
)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_the_sandbox_dies_with_its_runner_killed_right_after_spawning_it(
    files: RunnerFiles, tmp_path: Path
) -> None:
    """The runner is killed (-9) while bwrap has just started: the sandbox process must not be left
    orphaned, running a job nobody supervises or records."""
    pid_file = tmp_path / "bwrap.pid"
    sandbox = [sys.executable, "-c", _BWRAP_BEFORE_DIE_WITH_PARENT, str(pid_file)]
    process = files.start("true", sandbox=sandbox)
    sandbox_pid = None
    try:
        deadline = time.monotonic() + 20
        while not pid_file.exists() or not pid_file.read_text():
            assert process.poll() is None, files.log.read_text()
            assert time.monotonic() < deadline, "the sandbox did not start"
            time.sleep(0.01)
        sandbox_pid = int(pid_file.read_text())
        process.kill()
        process.wait(timeout=10)
        deadline = time.monotonic() + 10
        while _alive(sandbox_pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not _alive(sandbox_pid), "the sandbox outlived its runner"
    finally:
        process.kill()
        if sandbox_pid is not None and _alive(sandbox_pid):
            os.kill(sandbox_pid, signal.SIGKILL)
