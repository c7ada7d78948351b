"""GPU telemetry in a real `astrago server` driven by the real CLI: a scripted source makes simulated GPUs
busy for sandboxed jobs, and a replay of a recorded H100 feeds a job's GPU; the samples land on the right
workload and replica, `astrago top` and `astrago describe` show them, MIG says "not attributable", and a
restarted server keeps them."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pexpect
import pytest

from tests.support.server import ADMIN_PASSWORD, ASTRAGO, ServerProcess, User, wait_for

SLEEP = ["sleep", "300"]
ONE_GPU = {"gpus": 1, "cpu": "100m", "memory": "64Mi"}
H100_CAPTURE = "gpu/utkuozdemir_nvidia_gpu_exporter/linux-x86_64__nvidia-h100-80gb-hbm3__590.48.01.txt"


def _start(tmp_path: Path, gpus: str, source: str) -> tuple[ServerProcess, User]:
    server = ServerProcess(
        data_dir=tmp_path / "data",
        simulate_gpus=gpus,
        extra_env={"ASTRAGO_GPU_SOURCE": source, "ASTRAGO_TELEMETRY_INTERVAL_S": "1"},
    )
    server.start()
    admin = User(server, "admin", tmp_path / "admin-home")
    # signed in over HTTP: the CLI's own login has its tests; here the CLI runs with the token
    login = admin.api("POST", "/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
    admin.token = login.json()["token"]
    return server, admin


def _usage(admin: User, workload_id: str) -> dict[str, Any]:
    response = admin.api("GET", f"/api/v1/workloads/{workload_id}/gpu-usage", params={"step": 10})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def _sampled(admin: User, workload_id: str, samples: int = 2) -> dict[str, Any]:
    return wait_for(
        lambda: (u := _usage(admin, workload_id))["summary"]["samples"] >= samples and u,
        timeout=30,
        what=f"{samples} GPU samples of {workload_id}",
    )


def test_scripted_utilisation_lands_on_each_replica_and_survives_a_restart(tmp_path: Path) -> None:
    script = tmp_path / "gpus.yaml"
    script.write_text("gpus: []\n")
    server, admin = _start(tmp_path, "4xA100-80GB", f"scripted:{script}")
    try:
        admin.api("POST", "/api/v1/workspaces", json={"name": "ml-a"}).raise_for_status()
        job = admin.submit("ml-a", SLEEP, resources=ONE_GPU, replicas=2)
        notebookish = admin.submit("ml-a", SLEEP, resources=ONE_GPU)
        placements = {
            r["index"]: r["gpus"][0] for r in admin.wait_status(job, "RUNNING", timeout=30)["placements"]
        }
        (mig_gpu,) = admin.wait_status(notebookish, "RUNNING", timeout=30)["placements"][0]["gpus"]
        script.write_text(
            json.dumps(
                {
                    "gpus": [
                        {"index": placements[0], "memory_total_mib": 81920},
                        {"index": placements[1], "memory_total_mib": 81920},
                        {"index": mig_gpu, "mig": True},
                    ],
                    "processes": [
                        {
                            "gpu": placements[0],
                            "select": {"workload": job, "replica": 0},
                            "utilization": 20,
                            "memory_mib": 1000,
                        },
                        {
                            "gpu": placements[1],
                            "select": {"workload": job, "replica": 1},
                            "utilization": 70,
                            "memory_mib": 3000,
                        },
                        {
                            "gpu": mig_gpu,
                            "select": {"workload": notebookish},
                            "utilization": 90,
                            "memory_mib": 500,
                        },
                    ],
                }
            )
        )
        usage = _sampled(admin, job, samples=4)
        series = {(s["replica_index"], s["gpu_index"]): s["points"] for s in usage["series"]}
        assert set(series) == {(0, placements[0]), (1, placements[1])}
        assert {p["gpu_util_percent"] for p in series[(0, placements[0])]} == {20.0}
        assert {p["memory_used_bytes"] for p in series[(1, placements[1])]} == {3000 * 1024 * 1024}
        assert usage["summary"]["gpu_util_peak_percent"] == 70.0
        assert usage["sources"] == ["scripted"]

        mig = _sampled(admin, notebookish)
        assert mig["attributable"] is False
        assert mig["summary"]["gpu_util_mean_percent"] is None  # never 0
        assert "not attributable" in mig["reason"]

        top = admin.cli("top", "--once", "-o", "json").json()
        rows = {row["workload_id"]: row for row in top["rows"]}
        assert rows[job]["gpu_util_percent"] == pytest.approx(45.0)
        assert rows[job]["source"] == "scripted"
        assert rows[notebookish]["gpu_util_percent"] is None
        assert "not attributable" in rows[notebookish]["reason"]
        assert next(row["workload_id"] for row in top["rows"]) == job  # busiest first
        table = admin.cli("top", "--once").stdout
        assert job in table
        assert "45%" in table

        described = admin.cli("describe", job).stdout
        assert "GPU use:   mean 45%, peak 70% per GPU" in described
        assert "not attributable" in admin.cli("describe", notebookish).stdout
        before = _usage(admin, job)["summary"]["samples"]

        server.kill9()  # the jobs keep running and are re-adopted
        server.start()
        after = _sampled(admin, job, samples=before + 2)  # the old samples are kept; new ones follow
        assert after["summary"]["gpu_util_peak_percent"] == 70.0
        for workload_id in (job, notebookish):
            admin.api("POST", f"/api/v1/workloads/{workload_id}/cancel").raise_for_status()
    finally:
        server.stop()


def test_a_replayed_recording_feeds_the_job_holding_that_gpu(tmp_path: Path, shared_data: Path) -> None:
    server, admin = _start(tmp_path, "1xH100-80GB", f"replay:{shared_data / H100_CAPTURE}")
    try:
        admin.api("POST", "/api/v1/workspaces", json={"name": "ml-a"}).raise_for_status()
        job = admin.submit("ml-a", SLEEP, resources=ONE_GPU)
        idle = admin.submit("ml-a", SLEEP, resources={"cpu": "100m", "memory": "64Mi"})
        admin.wait_status(job, "RUNNING", timeout=30)
        usage = _sampled(admin, job)
        (series,) = usage["series"]
        assert (series["replica_index"], series["gpu_index"]) == (0, 0)
        # the recording's "load" state: three processes on GPU 0 at 0 %, 0 % and 99 %
        assert usage["summary"]["gpu_util_peak_percent"] == 99.0
        assert usage["summary"]["memory_peak_bytes"] == 2690646016 + 1616904192 + 16452157440
        assert usage["sources"] == ["replay"]
        assert "the workload holds no GPUs" in admin.cli("describe", idle).stdout
        nodes = admin.api(
            "GET", f"/api/v1/nodes/{admin.api('GET', '/api/v1/nodes').json()[0]['name']}/gpu-usage"
        )
        (gpu,) = nodes.json()["gpus"]
        assert gpu["gpu_util_percent"] == 100.0
        assert gpu["source"] == "replay"
        _top_refreshes_live_until_ctrl_c(admin, job)
        _bad_ranges_are_refused(admin, job)
        admin.api("POST", f"/api/v1/workloads/{job}/cancel").raise_for_status()
    finally:
        server.stop()


def _top_refreshes_live_until_ctrl_c(admin: User, job: str) -> None:
    """`astrago top` in a real terminal: the listing, then a refresh, until Ctrl-C ends it cleanly."""
    env = {**os.environ, "ASTRAGO_URL": admin.server.url, "ASTRAGO_TOKEN": admin.token or ""}
    top = pexpect.spawn(
        ASTRAGO[0], [*ASTRAGO[1:], "top", "--interval", "1"], env=env, dimensions=(30, 200), timeout=30,
        encoding="utf-8",
    )  # fmt: skip
    try:
        top.expect("astrago top")
        top.expect(job)
        top.expect("99%")  # the recording's busiest process on the GPU the job holds
        top.expect("astrago top")  # refreshed
        top.sendintr()
        top.expect(pexpect.EOF)
    finally:
        top.close(force=True)
    assert top.exitstatus == 0, top.before


def _bad_ranges_are_refused(admin: User, job: str) -> None:
    path = f"/api/v1/workloads/{job}/gpu-usage"
    for params, detail in (
        ({"since": "2026-12-01T00:00:00"}, "needs a time zone"),
        ({"since": "2026-12-02T00:00:00Z", "until": "2026-12-01T00:00:00Z"}, "since must be before until"),
        (
            {"since": "2026-01-01T00:00:00Z", "until": "2026-12-01T00:00:00Z", "step": 10},
            "give a larger step",
        ),
        ({"since": "0001-01-01T00:00:00Z"}, "between 2000 and 2200"),
        ({"step": 5}, "step must be ≥ 10"),
    ):
        response = admin.api("GET", path, params=params)
        assert response.status_code == 422, (params, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert detail in response.text, response.text
    assert admin.api("GET", "/api/v1/workloads/nope/gpu-usage").status_code == 404
    assert admin.api("GET", "/api/v1/nodes/nope/gpu-usage").status_code == 404


def test_a_gpu_source_that_cannot_be_read_stops_the_start(tmp_path: Path) -> None:
    server = ServerProcess(
        data_dir=tmp_path / "data",
        simulate_gpus="1xA100-80GB",
        extra_env={"ASTRAGO_GPU_SOURCE": f"scripted:{tmp_path / 'missing.yaml'}"},
    )
    done = subprocess.run(
        [*ASTRAGO, "server", "--port", str(server.port), "--simulate-gpus", "1xA100-80GB"],
        env=server.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "cannot sample GPUs: gpu_source 'scripted:" in done.stderr
    assert "missing.yaml" in done.stderr
    assert "Traceback" not in done.stderr
