"""A person using the web console: sign in, submit from the form and watch it run live (no reload),
queueing with its reason and position, live logs, cancel, what members and admins may see and do,
tokens, and recovery after the server restarts."""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import Page, expect

from tests.e2e.conftest import sign_in
from tests.support.server import Gate, User

ONE_GPU = {"resources": {"gpus": 1, "cpu": "100m", "memory": "64Mi"}}
# Every status the detail page's badge shows, in order, recorded in the page itself: a reload would lose it.
RECORD_STATUSES = """
window.__statuses = [];
new MutationObserver(() => {
  const badge = document.querySelector('[data-testid=status] [data-status]');
  const status = badge && badge.getAttribute('data-status');
  if (status && window.__statuses[window.__statuses.length - 1] !== status) window.__statuses.push(status);
}).observe(document, {subtree: true, childList: true, attributes: true});
"""


def _gated_command(gate: Gate) -> str:
    return (
        "/bin/sh -c 'echo hello-from-job; "
        f'while [ ! -e {gate.root}/"$ASTRAGO_WORKLOAD_ID".open ]; do sleep 0.1; done; echo done-line\''
    )


def test_submit_from_the_form_and_watch_it_run_and_log_live(
    page: Page, member: Callable[[str, str], User], gate: Gate
) -> None:
    alice = member("alice", "team-a")
    page.add_init_script(RECORD_STATUSES)
    sign_in(page, alice.server, "alice")
    page.get_by_role("link", name="Submit", exact=True).click()
    page.get_by_label("Name").fill("Not a valid name!")
    page.get_by_label("Command").fill("/bin/true")
    page.get_by_role("button", name="Submit", exact=True).click()
    name_error = page.locator(".mantine-InputWrapper-root", has=page.get_by_label("Name")).locator(
        ".mantine-InputWrapper-error"
    )
    expect(name_error).to_contain_text("name must match the pattern")  # the server's 422, at its field
    page.get_by_label("Name").fill("first-train")
    page.get_by_label("Command").fill(_gated_command(gate))
    page.get_by_label("CPU (cores)").fill("100m")
    page.get_by_label("Memory").fill("64Mi")
    page.get_by_role("button", name="Submit", exact=True).click()

    expect(page.get_by_role("heading", name="first-train")).to_be_visible()
    workload_id = page.url.rsplit("/", 1)[-1]
    expect(page.get_by_test_id("status").locator("[data-status=RUNNING]")).to_be_visible()
    expect(page.get_by_test_id("logs")).to_contain_text("hello-from-job")
    gate.open(workload_id)
    expect(page.get_by_test_id("logs")).to_contain_text("done-line")  # followed live
    expect(page.get_by_test_id("status").locator("[data-status=SUCCEEDED]")).to_be_visible()
    seen = page.evaluate("window.__statuses")
    assert seen[0] == "PENDING", seen
    assert seen[-1] == "SUCCEEDED", seen
    assert "RUNNING" in seen, seen
    assert seen.index("RUNNING") < seen.index("SUCCEEDED")
    expect(page.get_by_text("Placed", exact=True)).to_be_visible()  # the timeline, from events
    expect(page.get_by_role("cell", name="GPU-sim-", exact=False).first).to_be_visible()


def test_a_job_over_quota_shows_why_and_its_place_then_starts_on_screen_and_can_be_cancelled(
    page: Page, member: Callable[[str, str], User], console_admin: User, gate: Gate
) -> None:
    bob = member("bob", "team-b")
    limits = {"gpu_guaranteed": 1, "gpu_limit": 1}
    quota = console_admin.api("PUT", "/api/v1/workspaces/team-b/quota", json=limits)
    assert quota.status_code == 200, quota.text
    first = bob.submit("team-b", gate.command(), **ONE_GPU)
    bob.wait_status(first, "RUNNING")
    second = bob.submit("team-b", gate.command(), **ONE_GPU)
    third = bob.submit("team-b", gate.command(), **ONE_GPU)

    sign_in(page, bob.server, "bob")
    page.goto(f"{bob.server.url}/workloads/{second}")
    expect(page.get_by_test_id("why-waiting")).to_contain_text("limit 1/1")
    expect(page.get_by_test_id("queue-position")).to_have_text("Position in the queue: #1")
    page.get_by_role("link", name="Nodes & GPUs").click()
    expect(page.get_by_role("link", name=bob.workload(first)["name"])).to_be_visible()  # the GPU it holds
    page.goto(f"{bob.server.url}/workloads/{second}")
    expect(page.get_by_test_id("queue-position")).to_be_visible()
    gate.open(first)  # capacity frees: the page shows it start without a reload
    expect(page.get_by_test_id("status").locator("[data-status=RUNNING]")).to_be_visible()

    page.goto(f"{bob.server.url}/workloads?workspace=team-b")
    row = page.locator(f"[data-workload-id='{third}']")
    expect(row).to_have_attribute("data-status", "PENDING")
    row.get_by_role("link").click()
    page.get_by_role("button", name="Cancel workload").click()
    page.get_by_role("dialog").get_by_role("button", name="Cancel workload").click()
    expect(page.get_by_test_id("status").locator("[data-status=CANCELLED]")).to_be_visible()
    gate.open(second)


def test_members_see_only_their_workspaces_and_admins_edit_quotas(
    page: Page, member: Callable[[str, str], User], console_admin: User
) -> None:
    carol = member("carol", "team-c")
    dave = member("dave", "team-d")
    hidden = dave.submit("team-d", ["/bin/true"], **ONE_GPU)
    sign_in(page, carol.server, "carol")
    page.get_by_role("link", name="Workspaces").click()
    expect(page.locator("[data-workspace='team-c']")).to_be_visible()
    expect(page.locator("[data-workspace='team-d']")).to_have_count(0)
    expect(page.get_by_role("button", name="Edit quota")).to_have_count(0)  # not an admin
    expect(page.get_by_role("link", name="Audit log")).to_have_count(0)
    page.goto(f"{carol.server.url}/workloads/{hidden}")
    expect(page.get_by_role("alert")).to_contain_text("does not exist or is not in one of your workspaces")
    page.get_by_role("button", name="Account").click()
    page.get_by_role("menuitem", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in to AstraGo")).to_be_visible()

    sign_in(page, console_admin.server, "admin", "admin-password-1")
    page.get_by_role("link", name="Workspaces").click()
    card = page.locator("[data-workspace='team-c']")
    card.get_by_role("button", name="Edit quota").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Guaranteed GPUs").fill("2")
    dialog.get_by_label("GPU limit").fill("3")
    dialog.get_by_role("button", name="Save quota").click()
    expect(page.get_by_test_id("quota-team-c")).to_contain_text("limit 3")
    quota = console_admin.api("GET", "/api/v1/workspaces/team-c/quota").json()
    gpu = next(e for e in quota["entries"] if e["resource"] == "gpu")
    assert (gpu["guaranteed"], gpu["limit"]) == (2, 3)


def test_a_token_is_shown_once_works_and_is_revoked(page: Page, member: Callable[[str, str], User]) -> None:
    erin = member("erin", "team-e")
    sign_in(page, erin.server, "erin")
    page.get_by_role("link", name="API tokens").click()
    page.get_by_label("Name").fill("ci-pipeline")
    page.get_by_role("button", name="Create token").click()
    secret = page.get_by_test_id("new-token").locator("code").inner_text()
    as_token = User(erin.server, "erin", erin.config_dir, token=secret)
    assert as_token.api("GET", "/api/v1/auth/me").status_code == 200
    page.get_by_role("button", name="Revoke ci-pipeline").click()
    expect(page.locator("[data-token='ci-pipeline']")).to_have_count(0)
    assert as_token.api("GET", "/api/v1/auth/me").status_code == 401


def test_admins_revoke_anyones_token_disable_users_and_search_the_audit_log(
    page: Page, member: Callable[[str, str], User], console_admin: User
) -> None:
    fay = member("fay", "team-fay")
    made = fay.api("POST", "/api/v1/auth/tokens", json={"name": "fay-ci", "read_only": True})
    fays_token = User(fay.server, "fay", fay.config_dir, token=made.json()["token"])
    sign_in(page, console_admin.server, "admin", "admin-password-1")
    page.get_by_role("link", name="API tokens").click()
    page.get_by_text("Everyone's tokens and sessions (admin)").click()
    row = page.locator("[data-token='fay-ci']")
    expect(row).to_contain_text("read-only")
    expect(row).to_contain_text("fay")
    row.get_by_role("button", name="Revoke fay-ci").click()
    expect(row).to_have_count(0)
    assert fays_token.api("GET", "/api/v1/auth/me").status_code == 401

    page.get_by_role("link", name="Users").click()
    fays_row = page.locator("[data-user='fay']")
    fays_row.get_by_role("button", name="Disable").click()
    expect(fays_row).to_contain_text("disabled")
    assert fay.api("GET", "/api/v1/auth/me").status_code == 401  # her sign-in session ended with it
    fays_row.get_by_role("button", name="Enable").click()
    expect(fays_row).to_contain_text("active")

    page.get_by_role("link", name="Audit log").click()
    page.get_by_label("Target").fill("fay")
    page.get_by_label("Action").fill("user")
    page.get_by_role("button", name="Search").click()
    expect(page).to_have_url(re.compile(r"/audit\?.*target=fay"))
    rows = page.locator("[data-audit-id]")
    expect(rows).to_have_count(3)  # created, disabled, enabled
    expect(rows.first).to_contain_text("user.update")
    page.reload()  # the search is in the URL
    expect(page.locator("[data-audit-id]")).to_have_count(3)


def test_the_page_recovers_by_itself_after_the_server_restarts(
    page: Page, member: Callable[[str, str], User]
) -> None:
    frank = member("frank", "team-f")
    sign_in(page, frank.server, "frank")
    page.goto(f"{frank.server.url}/workloads")
    page.evaluate("window.__notReloaded = true")
    server = frank.server
    assert server.process is not None
    server.process.terminate()
    server.process.wait(15)
    expect(page.get_by_test_id("reconnecting")).to_be_visible()
    server.start()
    expect(page.get_by_test_id("reconnecting")).to_have_count(0)
    submitted = frank.submit("team-f", ["/bin/true"], **ONE_GPU)
    expect(page.locator(f"[data-workload-id='{submitted}']")).to_have_attribute("data-status", "SUCCEEDED")
    assert page.evaluate("window.__notReloaded") is True
