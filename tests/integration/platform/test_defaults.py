"""Workloads that do not ask for CPU and memory get their node's share per GPU, or a small CPU-only
default, or their workspace's own defaults; `describe` says so."""

from __future__ import annotations

import psutil

from astrago.backends.local.inventory import usable_cpu_count
from tests.support.server import Gate, User


def test_four_one_gpu_jobs_run_at_once_on_any_machine(module_admin: User, gate: Gate) -> None:
    admin = module_admin
    admin.cli("workspace", "create", "share")
    ids = [
        admin.cli("run", "-w", "share", "--gpus", "1", "--", *gate.command()).stdout.strip() for _ in range(4)
    ]
    for workload_id in ids:  # before: 1 core each, so a 2-core machine ran only two of them
        admin.wait_status(workload_id, "RUNNING")
    resources = admin.workload(ids[0])["spec"]["resources"]
    assert resources["cpu_milli"] == max(100, usable_cpu_count() * 1000 // 4)
    assert resources["memory_mib"] == psutil.virtual_memory().total // (1024 * 1024) // 4
    described = admin.cli("describe", ids[0]).stdout
    assert "defaulted: cpu and memory from the node's share per GPU" in described
    for workload_id in ids:
        gate.open(workload_id)

    cpu_only = admin.cli("run", "-w", "share", "--memory", "2Gi", "--", "true").stdout.strip()
    spec = admin.workload(cpu_only)["spec"]
    assert (spec["resources"]["cpu_milli"], spec["resources"]["memory_mib"]) == (500, 2048)
    assert spec["defaulted"] == {"fields": ["cpu"], "from": "the default for CPU-only workloads"}


def test_a_workspace_sets_its_own_defaults(module_admin: User) -> None:
    admin = module_admin
    admin.cli("workspace", "create", "own")
    shown = admin.cli(
        "workspace", "defaults", "own", "--cpu", "250m", "--memory-per-gpu", "4Gi", "-o", "json"
    )
    assert shown.json()["cpu_milli"] == 250
    admin.cli("workspace", "defaults", "own", "--memory", "512Mi")  # adds to what is set
    assert admin.cli("workspace", "defaults", "own", "-o", "json").json() == {
        "workspace": "own",
        "cpu_milli": 250,
        "memory_mib": 512,
        "cpu_milli_per_gpu": None,
        "memory_mib_per_gpu": 4096,
    }
    cpu_only = admin.cli("run", "-w", "own", "--no-code", "--", "true").stdout.strip()
    assert admin.workload(cpu_only)["spec"]["resources"]["cpu_milli"] == 250
    gpu = admin.cli("run", "-w", "own", "--no-code", "--gpu-share", "0.5", "--", "true").stdout.strip()
    assert admin.workload(gpu)["spec"]["resources"]["memory_mib"] == 2048
    bad = admin.cli("workspace", "defaults", "own", "--cpu", "lots", check=False)
    assert bad.returncode == 1
    assert "cannot read cpu 'lots'" in bad.stderr
    admin.cli("workspace", "defaults", "own", "--reset")
    assert admin.cli("workspace", "defaults", "own", "-o", "json").json()["cpu_milli"] is None
