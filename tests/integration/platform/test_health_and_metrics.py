"""Health endpoints and the Prometheus exposition of a running server."""

from __future__ import annotations

import shutil
import subprocess

import httpx
import pytest

from tests.support.server import User


def test_health_readiness_and_openapi(admin: User) -> None:
    base = admin.server.url
    assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{base}/readyz").json() == {"status": "ready"}
    paths = httpx.get(f"{base}/openapi.json").json()["paths"]
    assert "/api/v1/workloads" in paths
    missing = httpx.get(f"{base}/api/v1/nope")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")


def test_metrics_count_workloads_queue_and_gpus(admin: User) -> None:
    blocker = admin.submit("default", ["sleep", "30"], resources={"gpus": 4, "cpu": "100m", "memory": "64Mi"})
    admin.wait_status(blocker, "RUNNING")
    admin.submit("default", ["true"], resources={"gpus": 1, "cpu": "100m", "memory": "64Mi"})
    text = httpx.get(f"{admin.server.url}/metrics").text
    assert 'astrago_workloads{state="RUNNING",workspace="default"} 1.0' in text
    assert 'astrago_workloads{state="PENDING",workspace="default"} 1.0' in text
    assert "astrago_queue_length 1.0" in text
    assert "astrago_gpus 4.0" in text
    assert "astrago_gpus_allocated 4.0" in text
    assert "astrago_scheduling_cycle_seconds_count" in text
    admin.cli("cancel", blocker)
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool (Debian prometheus) not installed; the exposition was checked above")
    checked = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
