"""GPU use in the console: a scripted source makes a sandboxed job's simulated GPU busy; its workload page
shows the mean and peak and draws the utilisation and memory charts, the node page shows that GPU's use now
and its chart, and the chart library is loaded only by the pages that draw charts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import sign_in
from tests.support.server import ADMIN_PASSWORD, ServerProcess, User, wait_for


@pytest.fixture(scope="module")
def busy_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Path]]:
    root = tmp_path_factory.mktemp("gpu-charts")
    script = root / "gpus.yaml"
    script.write_text("gpus: []\n")
    process = ServerProcess(
        data_dir=root / "data",
        simulate_gpus="2xA100-80GB",
        extra_env={"ASTRAGO_GPU_SOURCE": f"scripted:{script}", "ASTRAGO_TELEMETRY_INTERVAL_S": "1"},
    )
    process.start()
    yield process, script
    process.stop()


def test_the_workload_and_node_pages_chart_gpu_use(
    page: Page, busy_server: tuple[ServerProcess, Path], tmp_path: Path
) -> None:
    server, script = busy_server
    admin = User(server, "admin", tmp_path / "admin-home")
    admin.login(ADMIN_PASSWORD)
    admin.api("POST", "/api/v1/workspaces", json={"name": "ml-a"}).raise_for_status()
    job = admin.submit("ml-a", ["sleep", "300"], name="busy-train", resources={"gpus": 1, "cpu": "100m"})
    (gpu,) = admin.wait_status(job, "RUNNING", timeout=30)["placements"][0]["gpus"]
    script.write_text(
        json.dumps(
            {
                "gpus": [{"index": gpu, "memory_total_mib": 81920, "temperature_celsius": 57}],
                "processes": [
                    {"gpu": gpu, "select": {"workload": job}, "utilization": 65, "memory_mib": 2048}
                ],
            }
        )
    )
    wait_for(
        lambda: admin.api("GET", f"/api/v1/workloads/{job}/gpu-usage").json()["summary"]["samples"] >= 2,
        timeout=30,
        what="GPU samples",
    )
    chart_requests: list[str] = []
    page.on(
        "request", lambda request: chart_requests.append(request.url) if "GpuCharts" in request.url else None
    )

    sign_in(page, server, "admin", ADMIN_PASSWORD)
    assert chart_requests == []  # the first page does not load the chart library
    page.goto(f"{server.url}/workloads/{job}")
    usage = page.get_by_test_id("gpu-usage")
    expect(usage.get_by_test_id("gpu-summary")).to_contain_text("Mean 65%, peak 65% per GPU")
    expect(usage.get_by_test_id("gpu-summary")).to_contain_text("peak 2.0 GiB")
    expect(usage.get_by_text("scripted")).to_be_visible()
    expect(usage.locator(".recharts-surface")).to_have_count(2)  # utilisation and memory
    assert chart_requests  # loaded now, for this page

    page.get_by_role("link", name="Nodes & GPUs").click()
    states = page.locator("[data-testid^=gpu-state-]")
    expect(states.locator("tr", has_text="65%")).to_have_count(1)
    expect(states).to_contain_text("57 °C")
    expect(states).to_contain_text("no reading of this GPU from the scripted source")  # not in the script
    expect(page.locator(".recharts-surface").first).to_be_visible()
    admin.api("POST", f"/api/v1/workloads/{job}/cancel").raise_for_status()
