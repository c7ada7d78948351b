"""`run -a`, `wait` and `logs -f` end with the workload's exit code, so they can gate a CI step."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import time

from tests.support.server import ASTRAGO, Gate, User


def test_run_attached_streams_the_output_and_exits_with_the_jobs_code(module_admin: User) -> None:
    admin = module_admin
    failed = admin.cli("run", "-a", "--", "sh", "-c", "echo working; exit 3", check=False)

    assert failed.returncode == 3
    assert failed.stdout == "working\n"
    assert "FAILED: " in failed.stderr
    assert "code 3" in failed.stderr

    succeeded = admin.cli("run", "--attach", "--", "sh", "-c", "echo fine")
    assert succeeded.returncode == 0
    assert succeeded.stdout == "fine\n"


def test_wait_and_logs_follow_exit_like_the_workload(module_admin: User, gate: Gate) -> None:
    admin = module_admin
    failing = admin.cli("run", "--", "sh", "-c", "echo out; exit 7").stdout.strip()
    assert admin.cli("wait", failing, check=False).returncode == 7
    follow = admin.cli("logs", "-f", failing, check=False)
    assert follow.returncode == 7
    assert follow.stdout == "out\n"
    assert admin.cli("logs", failing).returncode == 0  # without -f, printing the output is the success

    gated = admin.cli("run", "--", *gate.command()).stdout.strip()
    admin.wait_status(gated, "RUNNING")
    timed_out = admin.cli("wait", gated, "--timeout", "1", check=False)
    assert timed_out.returncode == 124
    assert "still RUNNING" in timed_out.stderr
    admin.cli("cancel", gated)
    cancelled = admin.cli("wait", f"workload/{gated}", check=False)
    assert cancelled.returncode == 130
    assert "CANCELLED: cancelled by admin" in cancelled.stderr


def _read_until(fd: int, wanted: str, timeout: float = 30.0) -> str:
    seen = ""
    deadline = time.monotonic() + timeout
    while wanted not in seen:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"no {wanted!r} in {seen!r}"
        if select.select([fd], [], [], remaining)[0]:
            seen += os.read(fd, 4096).decode(errors="replace")
    return seen


def test_ctrl_c_while_attached_asks_and_cancels(module_admin: User, gate: Gate) -> None:
    """In a terminal (a pseudo-terminal here), Ctrl-C asks whether to cancel or detach."""
    admin = module_admin
    controller, terminal = os.openpty()
    env = {**os.environ, "XDG_CONFIG_HOME": str(admin.config_dir), "ASTRAGO_URL": admin.server.url}
    admin.workdir.mkdir(parents=True, exist_ok=True)
    attached = subprocess.Popen(
        [*ASTRAGO, "run", "-a", "--no-code", "--", *gate.command()],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        env=env,
        cwd=admin.workdir,
    )
    os.close(terminal)
    try:
        submitted = _read_until(controller, "Ctrl-C to detach or cancel")
        workload_id = submitted.split("submitted ", 1)[1].split(";")[0]
        admin.wait_status(workload_id, "RUNNING")
        attached.send_signal(signal.SIGINT)
        _read_until(controller, "or detach and leave it running?")
        os.write(controller, b"c\n")
        assert attached.wait(60) == 130
        assert admin.wait_status(workload_id, "CANCELLED")["reason"].startswith("cancelled by admin")
    finally:
        if attached.poll() is None:
            attached.kill()
        os.close(controller)
