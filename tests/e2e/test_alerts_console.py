"""Alerts and idle reclaim in the console, in a real browser: a member's idle notebook (the scripted GPU
source says 0 %) shows the reclaim banner on its page without a reload, "Keep running" postpones it (one
click, up to the cap), and the header's bell counts the open alert and leads to the alerts page."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from playwright.sync_api import Page, expect

from tests.e2e.conftest import sign_in
from tests.support.server import ServerProcess, User

NOTEBOOK = ["sh", "-c", f'exec {sys.executable} -m http.server "$PORT" --bind 127.0.0.1']


@pytest.fixture(scope="module")
def gpu_script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("gpus") / "gpus.yaml"
    path.write_text(yaml.safe_dump({"gpus": [{"index": i} for i in range(4)], "processes": []}))
    return path


@pytest.fixture(scope="module")
def console_server(tmp_path_factory: pytest.TempPathFactory, gpu_script: Path) -> Iterator[ServerProcess]:
    """This module's server: GPU use from the script, idle reclaim in seconds (warned after 3 s idle,
    stopped 30 s later, one keep of 30 s)."""
    process = ServerProcess(
        data_dir=tmp_path_factory.mktemp("alerts-console") / "data",
        extra_env={
            "ASTRAGO_GPU_SOURCE": f"scripted:{gpu_script}",
            "ASTRAGO_TELEMETRY_INTERVAL_S": "1",
            "ASTRAGO_ALERT_EVALUATION_INTERVAL_S": "0.5",
            "ASTRAGO_RECLAIM_IDLE_FOR_S": "33",
            "ASTRAGO_RECLAIM_WARN_BEFORE_S": "30",
            "ASTRAGO_RECLAIM_POSTPONE_S": "30",
            "ASTRAGO_RECLAIM_MAX_POSTPONE_S": "30",
        },
    )
    process.start()
    yield process
    process.stop()


def test_idle_banner_keep_running_and_the_bell(
    page: Page, member: Callable[[str, str], User], gpu_script: Path
) -> None:
    nina = member("nina", "notebooks")
    workload_id = nina.submit(
        "notebooks",
        NOTEBOOK,
        name="idle-notebook",
        kind="interactive",
        ports=[8000],
        resources={"gpus": 1, "cpu": "100m", "memory": "128Mi"},
    )
    nina.wait_status(workload_id, "RUNNING", timeout=60)
    sign_in(page, nina.server, "nina")
    page.goto(f"{nina.server.url}/workloads/{workload_id}")
    expect(page.get_by_role("heading", name="idle-notebook")).to_be_visible()
    expect(page.get_by_test_id("reclaim-banner")).to_have_count(0)

    processes = [{"gpu": 0, "select": {"workload": workload_id}, "utilization": 0, "memory_mib": 512}]
    gpu_script.write_text(yaml.safe_dump({"gpus": [{"index": i} for i in range(4)], "processes": processes}))

    banner = page.get_by_test_id("reclaim-banner")
    expect(banner).to_contain_text("will be stopped")  # live: the warning arrives without a reload
    expect(page.get_by_test_id("alert-bell")).to_have_attribute("aria-label", "1 open alert")
    page.get_by_role("button", name="Keep running").click()
    expect(banner).to_contain_text("Kept running by nina")
    expect(banner).to_contain_text("as long as the policy allows")  # the cap: one keep of 30 s
    expect(page.get_by_role("button", name="Keep running")).to_have_count(0)

    page.get_by_test_id("alert-bell").click()
    expect(page.get_by_role("heading", name="Alerts")).to_be_visible()
    row = page.get_by_test_id("alert-row")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("idle-reclaim")
    expect(row).to_contain_text(workload_id)
