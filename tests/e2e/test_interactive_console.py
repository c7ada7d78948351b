"""Interactive work from the console's workload page, in Chromium against a real server: a shell in the
Terminal tab (xterm.js over the exec WebSocket, authenticated without the token in its URL) and the Open
button of a real web app (`python -m http.server $PORT`), which turns on by itself once the app is ready
and opens the app's page through the gateway in a new tab."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable

from playwright.sync_api import BrowserContext, Page, expect

from tests.e2e.conftest import sign_in
from tests.support.server import Gate, User

SMALL = {"cpu": "100m", "memory": "128Mi"}


def test_a_shell_in_the_terminal_tab_runs_commands_and_reports_its_exit_code(
    page: Page, member: Callable[[str, str], User]
) -> None:
    carol = member("carol", "team-shell")
    workload_id = carol.submit("team-shell", ["sleep", "300"], env={"GREETING": "hi"}, resources=SMALL)
    carol.wait_status(workload_id, "RUNNING")
    sockets: list[str] = []
    page.on("websocket", lambda socket: sockets.append(socket.url))
    sign_in(page, carol.server, "carol")
    page.goto(f"{carol.server.url}/workloads/{workload_id}")
    page.get_by_role("tab", name="Terminal").click()
    terminal = page.get_by_test_id("terminal")
    expect(terminal.locator(".xterm-rows")).to_contain_text("$", timeout=30_000)  # the shell's prompt
    terminal.click()
    page.keyboard.type('echo "$GREETING sum=$((6 * 7))"')  # the echo of the line does not say sum=42
    page.keyboard.press("Enter")
    expect(terminal.locator(".xterm-rows")).to_contain_text("hi sum=42")
    page.keyboard.type("exit 3")
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("terminal-ended")).to_contain_text("exit code 3")
    token = carol.token
    assert token
    assert sockets
    assert all(token not in url for url in sockets)  # the token never rides in a URL

    page.get_by_role("button", name="New session").click()
    expect(terminal.locator(".xterm-rows")).to_contain_text("$", timeout=30_000)
    carol.api("POST", f"/api/v1/workloads/{workload_id}/cancel")
    expect(page.get_by_test_id("terminal-ended")).to_contain_text("The workload has ended", timeout=30_000)


def test_the_open_button_turns_on_when_the_app_is_ready_and_opens_it_through_the_gateway(
    page: Page, context: BrowserContext, member: Callable[[str, str], User], gate: Gate
) -> None:
    dave = member("dave", "team-web")
    serve = (
        f'while [ ! -e {gate.root}/"$ASTRAGO_WORKLOAD_ID".open ]; do sleep 0.1; done; '
        "echo '<h1>served by the workload</h1>' > index.html; "
        f'exec {shlex.quote(sys.executable)} -m http.server --bind 127.0.0.1 "$PORT"'
    )
    workload_id = dave.submit(
        "team-web", ["/bin/sh", "-c", serve], kind="interactive", ports=[8000], resources=SMALL
    )
    sign_in(page, dave.server, "dave")
    page.goto(f"{dave.server.url}/workloads/{workload_id}")
    expect(page.get_by_test_id("endpoint-8000-not-ready")).to_be_visible()  # not listening yet: why
    expect(page.get_by_role("button", name="Open port 8000")).to_be_disabled()

    gate.open(workload_id)  # the app starts listening; the page learns of it without a reload
    expect(page.get_by_role("button", name="Open port 8000")).to_be_enabled(timeout=60_000)
    with context.expect_page() as opened:
        page.get_by_role("button", name="Open port 8000").click()
    app = opened.value
    app.wait_for_url(f"**/proxy/{workload_id}/8000/")  # the one-time ticket traded for a cookie
    expect(app.get_by_role("heading", name="served by the workload")).to_be_visible()
    assert app.evaluate("window.opener") is None  # the app cannot reach back into the console
    dave.api("POST", f"/api/v1/workloads/{workload_id}/cancel")
