"""The console's volumes page in Chromium: create a volume, upload files by the file picker and by a drop
(tus-js-client), see them listed with their exact size and progress at 100 %, usage against the storage
quota, and a delete refused while a workload mounts the volume, naming it."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, Route, expect

from tests.e2e.conftest import sign_in
from tests.support.server import Gate, User

DROP_A_FILE = """([selector, name, size]) => {
  const transfer = new DataTransfer();
  transfer.items.add(new File([new Uint8Array(size).fill(7)], name));
  const zone = document.querySelector(selector);
  zone.dispatchEvent(new DragEvent("dragover", {bubbles: true, cancelable: true, dataTransfer: transfer}));
  zone.dispatchEvent(new DragEvent("drop", {bubbles: true, cancelable: true, dataTransfer: transfer}));
}"""


def test_upload_by_picker_and_drop_then_see_sizes_progress_and_a_refused_delete(
    page: Page, member: Callable[[str, str], User], console_admin: User, gate: Gate, tmp_path: Path
) -> None:
    vera = member("vera", "vol-team")
    quota = {"storage_guaranteed": "256Mi", "storage_limit": "1Gi"}
    assert console_admin.api("PUT", "/api/v1/workspaces/vol-team/quota", json=quota).status_code == 200
    picked = tmp_path / "weights 1.bin"
    picked.write_bytes(os.urandom(3_000_123))
    sign_in(page, vera.server, "vera")
    page.get_by_role("link", name="Volumes", exact=True).click()
    expect(page.get_by_test_id("storage-quota")).to_contain_text("limit 1")  # GiB, against the quota

    form = page.get_by_role("form", name="Create a volume")
    form.get_by_label("New volume").fill("ds")
    form.get_by_label("Size").fill("64Mi")
    form.get_by_role("button", name="Create").click()
    page.locator("[data-volume=ds]").get_by_role("button", name="ds", exact=True).click()
    browser = page.get_by_test_id("volume-browser")
    expect(browser).to_contain_text("$ASTRAGO_VOLUME_DS")

    browser.get_by_label("Files to upload").set_input_files(str(picked))
    row = browser.locator('[data-upload="/weights 1.bin"]')
    expect(row).to_have_attribute("data-status", "done")
    expect(row.get_by_test_id("upload-progress")).to_contain_text("100% · 2.9 MiB of 2.9 MiB")
    listed = browser.locator('[data-file="weights 1.bin"]').get_by_test_id("file-size")
    expect(listed).to_have_attribute("title", "3000123 bytes")

    page.evaluate(DROP_A_FILE, ["[data-testid=dropzone]", "dropped.bin", 123_457])
    expect(browser.locator('[data-upload="/dropped.bin"]')).to_have_attribute("data-status", "done")
    expect(browser.locator('[data-file="dropped.bin"]').get_by_test_id("file-size")).to_have_attribute(
        "title", "123457 bytes"
    )
    expect(page.locator("[data-volume=ds]")).to_contain_text("3.0 MiB in 2 files of 64.0 MiB")
    download = "/api/v1/workspaces/vol-team/volumes/ds/download"
    stored = vera.api("GET", download, params={"path": "weights 1.bin"})
    assert stored.content == picked.read_bytes()

    job = vera.submit("vol-team", gate.command(), volumes=["ds:/data"], name="holder")
    vera.wait_status(job, "RUNNING")
    page.on("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete ds").click()
    refusal = page.get_by_role("alert").filter(has_text="Cannot delete the volume")
    expect(refusal).to_contain_text(f"holder ({job}, RUNNING)")  # refused while mounted, naming it
    gate.open(job)
    vera.wait_status(job, "SUCCEEDED")


def test_an_upload_interrupted_by_a_reload_resumes_when_the_same_file_is_picked_again(
    page: Page, member: Callable[[str, str], User], tmp_path: Path
) -> None:
    wanda = member("wanda", "resume-team")
    volumes = "/api/v1/workspaces/resume-team/volumes"
    assert wanda.api("POST", volumes, json={"name": "big"}).status_code == 201
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(20 * 1024 * 1024))  # two PATCHes of 16 MiB and 4 MiB
    held: list[Route] = []

    def hold_the_second_chunk(route: Route) -> None:
        if route.request.method == "PATCH" and route.request.headers.get("upload-offset") != "0":
            held.append(route)  # never answered: the page is reloaded while it is in flight
        else:
            route.continue_()

    sign_in(page, wanda.server, "wanda")
    page.goto(f"{wanda.server.url}/volumes?workspace=resume-team&volume=big&path=%2F")
    page.route("**/api/v1/uploads/**", hold_the_second_chunk)
    with page.expect_response(lambda r: r.request.method == "PATCH" and r.status == 204):
        page.get_by_label("Files to upload").set_input_files(str(source))
    page.reload()
    page.unroute("**/api/v1/uploads/**")
    expect(page.get_by_test_id("unfinished")).to_contain_text("big.bin (16.0 MiB of 20.0 MiB)")

    page.get_by_label("Files to upload").set_input_files(str(source))
    row = page.locator('[data-upload="/big.bin"]')
    expect(row).to_have_attribute("data-status", "done")
    expect(row).to_contain_text("100% · 20.0 MiB of 20.0 MiB (resumed at 16.0 MiB)")
    stored = wanda.api("GET", f"{volumes}/big/download", params={"path": "big.bin"})
    assert stored.content == source.read_bytes()
