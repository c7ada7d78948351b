"""The README's quickstart, as a new user types it."""

from __future__ import annotations

from tests.support.server import User


def test_run_sees_its_assigned_gpu_and_succeeds(admin: User) -> None:
    """Exactly the README: log in, run in the default workspace, read the logs."""
    workload_id = admin.cli(
        "run",
        "--gpus",
        "1",
        "--",
        "python",
        "-c",
        "import os; print(os.environ['CUDA_VISIBLE_DEVICES'])",
    ).stdout.strip()

    admin.wait_status(workload_id, "SUCCEEDED")
    described = admin.cli("describe", workload_id, "--json").json()
    assert described["placements"][0]["gpus"] == [0]
    assert admin.cli("logs", workload_id).stdout.strip() == "0"
    events = [e["type"] for e in described["events"]]
    assert events[0] == "Submitted"
    assert described["workspace"] == "default"
    assert events[-1] == "Succeeded"


def test_nodes_show_simulated_gpus_as_simulated(admin: User) -> None:
    nodes = admin.cli("nodes", "--json").json()
    assert len(nodes) == 1
    devices = nodes[0]["devices"]
    assert [d["model"] for d in devices] == ["A100-80GB"] * 4
    assert all(d["simulated"] for d in devices)
    assert "simulated" in admin.cli("nodes").stdout


def test_cpu_only_job_sees_no_gpu_and_reports_its_exit_code(admin: User) -> None:
    admin.cli("workspace", "create", "ml-a")
    workload_id = admin.cli(
        "run", "-w", "ml-a", "--", "sh", "-c", 'echo "[$CUDA_VISIBLE_DEVICES]"; exit 3'
    ).stdout.strip()
    failed = admin.wait_status(workload_id, "FAILED")
    assert failed["placements"][0]["exit_code"] == 3
    assert "code 3" in failed["reason"]
    assert admin.cli("logs", workload_id).stdout.strip() == "[]"
