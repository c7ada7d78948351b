"""`run -a`, `wait` and `logs -f` end with the workload's exit code, so they can gate a CI step."""

from __future__ import annotations

from tests.support.server import Gate, User


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
