"""The usage ledger with a real server and the real CLI: GPU-hours of jobs with known durations on simulated
GPUs, used GPU-hours from a scripted GPU source, a job that ends while the server is down after `kill -9`, a
preempted job's two runs, who sees what, CSV, and bad input refused with a reason."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.server import Gate, ServerProcess, User, wait_for


@pytest.fixture
def script(tmp_path: Path) -> Path:
    """The scripted GPU source's script: what the simulated GPUs' processes do (rewritten by the test)."""
    path = tmp_path / "gpus.json"
    path.write_text('{"gpus": []}')
    return path


@pytest.fixture
def server(tmp_path: Path, script: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(
        data_dir=tmp_path / "data",
        extra_env={"ASTRAGO_GPU_SOURCE": f"scripted:{script}", "ASTRAGO_TELEMETRY_INTERVAL_S": "1"},
    )
    process.start()
    yield process
    process.stop()


def _resources(gpus: int) -> dict[str, Any]:
    return {"resources": {"gpus": gpus, "cpu": "500m", "memory": "256Mi"}}


def _hours(placement: dict[str, Any]) -> float:
    started = datetime.fromisoformat(placement["started_at"])
    finished = datetime.fromisoformat(placement["finished_at"])
    return (finished - started).total_seconds() / 3600


def _mean_gpu_percent(user: User, job: str, since: datetime, until: datetime) -> float:
    params = {"since": since.isoformat(), "until": until.isoformat()}
    summary = user.api("GET", f"/api/v1/workloads/{job}/gpu-usage", params=params).json()["summary"]
    return float(summary["gpu_util_mean_percent"])


def _row(report: dict[str, Any], key: str) -> dict[str, Any]:
    [row] = [r for r in report["rows"] if r["key"] == key]
    return row


def test_gpu_hours_of_known_runs_across_a_kill9_restart_and_a_preemption(
    server: ServerProcess, admin: User, make_user: Callable[[str], User], gate: Gate, script: Path
) -> None:
    kim = make_user("kim")
    for workspace in ("ml-a", "ml-b"):
        admin.cli("workspace", "create", workspace)
    admin.cli("workspace", "add-member", "ml-a", "kim", "--role", "member")

    # kim's 2-GPU job ends while the server is down; the ledger ends it at its recorded end, once
    job = kim.submit("ml-a", gate.command(), **_resources(2))
    gpus = kim.wait_status(job, "RUNNING")["placements"][0]["gpus"]
    wait_for(lambda: gate.starts(job), what="the job's first line")
    processes = [{"gpu": g, "select": {"workload": job}, "utilization": 40, "memory_mib": 100} for g in gpus]
    script.write_text(json.dumps({"gpus": [{"index": g} for g in gpus], "processes": processes}))
    wait_for(
        lambda: kim.api("GET", f"/api/v1/workloads/{job}/gpu-usage").json()["summary"]["samples"] >= 2,
        timeout=30,
        what="GPU samples of the job",
    )
    server.kill9()
    gate.open(job)
    time.sleep(1.5)  # it ends well before the restart
    restarted = time.time()
    server.start()
    placement = kim.wait_status(job, "SUCCEEDED")["placements"][0]
    assert datetime.fromisoformat(placement["finished_at"]).timestamp() < restarted
    report = kim.cli("usage", "--json").json()
    ml_a = _row(report, "ml-a")
    assert ml_a["gpu_hours"] == pytest.approx(2 * _hours(placement), rel=1e-3)
    assert ml_a["cpu_core_hours"] == pytest.approx(0.5 * _hours(placement), rel=1e-3)
    assert ml_a["memory_gib_hours"] == pytest.approx(0.25 * _hours(placement), rel=1e-3)
    # used GPU-hours: allocated ones × the mean utilisation of the samples taken during the run (the
    # script says 40 %; 0 before it was read). The ledger weighs each 1 s sample by the part of its period
    # inside the run, so its mean lies between the mean of the samples that start inside the run and the
    # mean that also counts the one sample per GPU that started just before it, in full.
    started = datetime.fromisoformat(placement["started_at"])
    finished = datetime.fromisoformat(placement["finished_at"])
    inside = _mean_gpu_percent(kim, job, started, finished)
    with_partial = _mean_gpu_percent(kim, job, started - timedelta(seconds=1), finished)
    ledger_mean = ml_a["gpu_hours_used"] / ml_a["gpu_hours"] * 100
    assert 0 < ledger_mean <= 40 + 1e-9  # a ratio of sums of floats: 40 can come back as 40.00…01
    assert min(inside, with_partial) - 1e-6 <= ledger_mean <= max(inside, with_partial) + 1e-6
    assert ml_a["gpu_hours_measured"] == ml_a["gpu_hours"]
    assert ml_a["allocations"] == 1

    # in ml-b a low-priority job is preempted by a high-priority one, then runs again: two runs; the
    # GPU source now says nothing of any GPU, so their used GPU-hours are unknown
    script.write_text('{"gpus": []}')
    low = admin.submit("ml-b", gate.command(), priority=-10, **_resources(4))
    admin.wait_status(low, "RUNNING")
    high = admin.submit("ml-b", gate.command(), priority=100, **_resources(4))
    admin.wait_status(high, "RUNNING", timeout=30)
    gate.open(high)
    high_run = admin.wait_status(high, "SUCCEEDED")["placements"][0]
    admin.wait_status(low, "RUNNING", timeout=30)
    gate.open(low)
    low_second_run = admin.wait_status(low, "SUCCEEDED")["placements"][0]
    assert len(gate.starts(low)) == 2
    by_user = admin.cli("usage", "--workspace", "ml-b", "--by", "user", "--json").json()
    ml_b = _row(by_user, "admin")
    assert ml_b["allocations"] == 3  # low twice, high once
    assert ml_b["gpu_hours_used"] is None  # no source scripted for them: unknown, never 0
    known = 4 * (_hours(high_run) + _hours(low_second_run))
    assert ml_b["gpu_hours"] > known  # plus low's first run, cut short by the preemption
    assert by_user["total"]["gpu_hours"] == pytest.approx(ml_b["gpu_hours"], rel=1e-9)

    # kim sees ml-a only; the admin sees both; the same totals by day, model and as CSV
    assert [r["key"] for r in kim.api("GET", "/api/v1/usage").json()["rows"]] == ["ml-a"]
    everyone = admin.api("GET", "/api/v1/usage").json()
    assert [r["key"] for r in everyone["rows"]] == ["ml-a", "ml-b"]
    assert everyone["total"]["gpu_hours_used"] == pytest.approx(ml_a["gpu_hours_used"], rel=1e-9)
    by_model = admin.api("GET", "/api/v1/usage", params={"by": "model"}).json()
    assert [r["key"] for r in by_model["rows"]] == ["A100-80GB"]
    assert by_model["total"]["gpu_hours"] == pytest.approx(everyone["total"]["gpu_hours"], rel=1e-9)
    table = list(csv.DictReader(io.StringIO(admin.cli("usage", "--by", "day", "--csv").stdout)))
    assert sum(float(r["gpu_hours"]) for r in table) == pytest.approx(
        everyone["total"]["gpu_hours"], rel=1e-6
    )
    assert admin.cli("usage").stdout.splitlines()[0].split() == [
        "WORKSPACE",
        "GPU-HOURS",
        "GPU-HOURS",
        "USED",
        "CPU-CORE-HOURS",
        "MEMORY",
        "GIB-HOURS",
        "RUNS",
    ]

    # refusals: a reason, a 4xx problem, no traceback
    hidden = kim.api("GET", "/api/v1/usage", params={"workspace": "ml-b"})
    assert hidden.status_code == 404
    assert hidden.headers["content-type"].startswith("application/problem+json")
    backwards = admin.api("GET", "/api/v1/usage", params={"from": "2026-12-03", "to": "2026-12-01"})
    assert backwards.status_code == 422
    assert "must be before to" in backwards.json()["detail"]
    refused = admin.cli("usage", "--tz", "Mars/Olympus", check=False)
    assert refused.returncode == 1
    assert "unknown time zone 'Mars/Olympus'" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert admin.cli("usage", "--by", "team", check=False).returncode == 2
