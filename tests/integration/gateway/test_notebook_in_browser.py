"""A real JupyterLab (from PyPI) started as an interactive workload without a command on the local backend,
opened through the gateway in Chromium as a user would: `astrago run --kind interactive`, `astrago open`,
the Lab UI loads, a kernel starts, a cell runs (its output comes back over the kernel's WebSocket)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.support.server import ADMIN_PASSWORD, ServerProcess, User

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
UI_TIMEOUT_MS = 120_000  # two shared cores: Lab's first load and a kernel start can take a while


@pytest.fixture
def notebook_user(tmp_path: Path) -> Iterator[User]:
    # As after `make up`: jupyterlab is in the server's venv, which is not on the PATH.
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if ".venv" not in p)
    server = ServerProcess(data_dir=tmp_path / "data", extra_env={"PATH": path})
    server.start()
    try:
        admin = User(server, "admin", tmp_path / "admin")
        admin.login(ADMIN_PASSWORD)
        admin.cli("workspace", "create", "nb")
        yield admin
    finally:
        server.stop()


def test_jupyterlab_opens_through_the_gateway_and_runs_a_cell(notebook_user: User) -> None:
    workload_id = notebook_user.cli("run", "-w", "nb", "--kind", "interactive", "--gpus", "1").stdout.strip()
    workload = notebook_user.wait_status(workload_id, "RUNNING", "FAILED", timeout=240)
    assert workload["status"] == "RUNNING", workload["reason"]
    url = notebook_user.cli("open", workload_id, "--print").stdout.strip()
    assert "token=" not in url  # the notebook's own token never reaches a URL
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(UI_TIMEOUT_MS)
            page.goto(url)
            page.wait_for_url(f"**/proxy/{workload_id}/8888/lab**")
            page.locator('.jp-LauncherCard[data-category="Notebook"]').first.click()
            # On a loaded machine the new notebook's kernel and editor take a while: typed keys and a
            # run sent before they are ready can be lost (seen once under four test workers).
            page.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]').first.wait_for()
            code = "import os; print(6 * 7, os.environ['CUDA_VISIBLE_DEVICES'])"
            editor = page.locator(".jp-Notebook .jp-Cell .cm-content").first
            editor.click()
            page.keyboard.type(code)
            expect(editor).to_have_text(code)
            page.keyboard.press("Shift+Enter")
            output = page.locator(".jp-OutputArea-output").first
            output.wait_for()
            assert output.inner_text().strip() == "42 0"  # one simulated GPU, by index
        finally:
            browser.close()
