"""The console's usage report in a real browser: a member sees their workspace's GPU-hours as a table and
a bar chart, regroups them per user, and downloads the CSV."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.e2e.conftest import sign_in
from tests.support.server import User

ONE_GPU = {"resources": {"gpus": 1, "cpu": "100m", "memory": "64Mi"}}


def test_a_member_reads_their_usage_as_a_table_and_a_chart_and_downloads_it(
    page: Page, member: Callable[[str, str], User]
) -> None:
    uma = member("uma", "team-u")
    job = uma.submit("team-u", ["sleep", "1"], **ONE_GPU)
    uma.wait_status(job, "SUCCEEDED", timeout=60)
    expected = uma.api("GET", "/api/v1/usage", params={"workspace": "team-u"}).json()["total"]["gpu_hours"]
    assert expected > 0

    sign_in(page, uma.server, "uma")
    page.get_by_role("link", name="Usage").click()
    table = page.get_by_test_id("usage-table")
    expect(table.get_by_role("row", name="team-u")).to_contain_text("unknown")  # no GPU source: never 0
    expect(page.get_by_test_id("usage-chart").locator("svg").first).to_be_visible()

    page.get_by_text("User", exact=True).click()
    expect(table.get_by_role("row", name="uma")).to_be_visible()

    with page.expect_download() as download:
        page.get_by_role("button", name="Download CSV").click()
    lines = Path(download.value.path()).read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("user,gpu_hours,gpu_hours_used")
    assert lines[1].startswith("uma,")
    assert abs(float(lines[1].split(",")[1]) - expected) <= 1e-9 + expected * 1e-6
