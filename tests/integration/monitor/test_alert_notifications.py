"""Alerts end to end, as an admin would set them up: a real server (short intervals through its
settings), the real CLI, and real receivers on loopback: an aiohttp webhook that checks the HMAC
signature and fails its first requests, an aiosmtpd SMTP server, and Apprise posting to a JSON URL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.alert_receivers import WebhookReceiver, smtp_server
from tests.support.server import ADMIN_PASSWORD, ServerProcess, User, wait_for

SECRET = "hook-secret-0123456789"
ONE_GPU = {"resources": {"gpus": 1, "cpu": 1, "memory": "64Mi"}}


@pytest.fixture(scope="module")
def webhook() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(SECRET, fail_first=2).running() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def mailbox() -> Iterator[tuple[int, list[Any]]]:
    with smtp_server() as server:
        yield server


@pytest.fixture(scope="module")
def admin(tmp_path_factory: pytest.TempPathFactory, mailbox: tuple[int, list[Any]]) -> Iterator[User]:
    """One server for the module: each test uses workspaces and channels of its own."""
    smtp_port, _ = mailbox
    tmp_path = tmp_path_factory.mktemp("alerts")
    server = ServerProcess(
        data_dir=tmp_path / "data",
        extra_env={
            "ASTRAGO_ALERT_EVALUATION_INTERVAL_S": "0.3",
            "ASTRAGO_ALERT_DELIVERY_INTERVAL_S": "0.2",
            "ASTRAGO_ALERT_RETRY_BASE_S": "0.3",
            "ASTRAGO_ALERT_PENDING_FOR_S": "1",
            "ASTRAGO_SMTP_HOST": "127.0.0.1",
            "ASTRAGO_SMTP_PORT": str(smtp_port),
            "ASTRAGO_SMTP_SECURITY": "none",
            "ASTRAGO_SMTP_FROM": "astrago@example.org",
        },
    )
    server.start()
    user = User(server, "admin", tmp_path / "admin-home")
    user.login(ADMIN_PASSWORD)
    yield user
    server.stop()


def _deliveries(admin: User, **filters: str) -> list[dict[str, Any]]:
    args = [item for key, value in filters.items() for item in (f"--{key}", value)]
    rows: list[dict[str, Any]] = admin.cli("alert", "deliveries", "--json", *args).json()
    return rows


def test_alerts_reach_webhook_email_and_apprise_once_each_with_retries_and_resolve_messages(
    admin: User, webhook: WebhookReceiver, mailbox: tuple[int, list[Any]]
) -> None:
    _, mails = mailbox
    assert admin.api("POST", "/api/v1/workspaces", json={"name": "ml"}).status_code == 201
    assert admin.api("PUT", "/api/v1/workspaces/ml/quota", json={"gpu_limit": 1}).status_code == 200
    admin.cli("alert", "channel", "add", "hook", "--webhook", webhook.url, "--secret", SECRET)
    admin.cli("alert", "channel", "add", "mail", "--email", "ops@example.org")
    admin.cli("alert", "channel", "add", "chat", "--apprise", webhook.plain_url.replace("http://", "json://"))
    admin.cli("alert", "subscribe", "hook", "--all")
    admin.cli("alert", "subscribe", "mail", "--workspace", "ml", "--rule", "workload-pending")
    admin.cli("alert", "subscribe", "chat", "--all", "--rule", "job-failed")

    # the channels' secrets never come back, from the API or the CLI
    listed = admin.cli("alert", "channel", "ls", "--json")
    assert SECRET not in listed.stdout
    assert "/plain" not in listed.stdout  # an Apprise URL shows only its scheme
    assert {c["name"]: c["signed"] for c in listed.json()} == {"chat": False, "hook": True, "mail": False}

    # the first job uses the whole quota (1 GPU): "quota-high" fires
    running = admin.submit("ml", ["sleep", "600"], **ONE_GPU)
    admin.wait_status(running, "RUNNING")
    wait_for(lambda: ("fired", "quota-high", "ml") in webhook.events(), what="the quota alert")
    # the quota holds the second job in the queue: after 1 s, "workload-pending" fires
    waiting = admin.submit("ml", ["sleep", "600"], **ONE_GPU)
    wait_for(lambda: ("fired", "workload-pending", waiting) in webhook.events(), what="the webhook's alert")
    wait_for(lambda: mails, what="the alert email")
    assert mails[0]["To"] == "ops@example.org"
    assert "FIRING" in mails[0]["Subject"]
    assert "workload-pending" in mails[0]["Subject"]
    assert waiting in mails[0].get_payload()
    # the receiver refused nothing (every request was signed) and failed twice before it took one
    assert webhook.refused == 0
    assert webhook.failed == 2
    first = _deliveries(admin, channel="hook")[-1]  # newest first
    assert first["rule"] == "quota-high"
    assert first["status"] == "delivered"
    assert first["attempts"] == 3
    assert first["last_error"].startswith("HTTP 500")

    # a job that fails: "job-failed" reaches the webhook and the Apprise channel (its only rule)
    broken = admin.submit("ml", ["sh", "-c", "exit 3"])
    admin.wait_status(broken, "FAILED")
    wait_for(lambda: ("fired", "job-failed", broken) in webhook.events(), what="the failure on the webhook")
    wait_for(lambda: webhook.plain, what="the failure through Apprise")
    assert broken in webhook.plain[0]["message"]
    assert "job-failed" in webhook.plain[0]["title"]

    # the condition ends (the first job is cancelled, the second starts): one resolve message
    admin.cli("cancel", running)
    admin.wait_status(waiting, "RUNNING", timeout=30)
    wait_for(
        lambda: ("resolved", "workload-pending", waiting) in webhook.events(), what="the resolve message"
    )
    wait_for(lambda: len(mails) == 2, what="the resolve email")
    assert "RESOLVED" in mails[1]["Subject"]

    # de-duplicated: the alert held for many evaluation cycles, yet each channel heard of it once
    assert webhook.events("workload-pending") == [
        ("fired", "workload-pending", waiting),
        ("resolved", "workload-pending", waiting),
    ]
    alerts = admin.cli("alert", "ls", "--all", "--json").json()["items"]
    pending = [a for a in alerts if a["rule"] == "workload-pending"]
    assert [a["state"] for a in pending] == ["resolved"]
    assert sorted(a["key"] for a in alerts if a["state"] == "firing") == sorted([broken, "ml"])

    # a person resolves the failure alert by hand: its subscribers hear that too
    admin.cli("alert", "resolve", str(next(a["id"] for a in alerts if a["key"] == broken)))
    wait_for(lambda: ("resolved", "job-failed", broken) in webhook.events(), what="the manual resolve")
    assert admin.cli("alert", "ls", "--json").json()["open_count"] == 1  # the quota is still full

    # every admin change is in the audit trail
    actions = {r["action"] for r in admin.api("GET", "/api/v1/audit", params={"limit": 200}).json()}
    assert {"alert.channel.add", "alert.subscribe", "alert.resolve"} <= actions


def _user(admin: User, name: str, workspace: str | None = None) -> User:
    assert admin.api("POST", "/api/v1/users", json={"username": name, "password": "password-123"}).is_success
    if workspace:
        added = admin.api(
            "PUT", f"/api/v1/workspaces/{workspace}/members", json={"username": name, "role": "member"}
        )
        assert added.is_success, added.text
    login = admin.api("POST", "/api/v1/auth/login", json={"username": name, "password": "password-123"})
    return User(admin.server, name, admin.config_dir.parent / name, token=login.json()["token"])


def test_who_may_change_channels_subscriptions_policies_and_resolve_alerts(admin: User) -> None:
    """The routes the authorization matrix leaves to this module, and refused input."""
    assert admin.api("POST", "/api/v1/workspaces", json={"name": "perm"}).status_code == 201
    dev = _user(admin, "dev", "perm")
    stranger = _user(admin, "stranger")
    channel = {"name": "perm-hook", "kind": "webhook", "target": "http://127.0.0.1:9/hook"}
    assert admin.api("POST", "/api/v1/alert-channels", json=channel).status_code == 201
    sub = admin.api(
        "POST", "/api/v1/alert-subscriptions", json={"channel": "perm-hook", "workspace": "perm"}
    ).json()

    # anonymous callers: 401; signed-in non-admins: 403 on every admin change
    changes = [
        ("DELETE", "/api/v1/alert-channels/perm-hook", None),
        ("POST", "/api/v1/alert-subscriptions", {"channel": "perm-hook", "all": True}),
        ("DELETE", f"/api/v1/alert-subscriptions/{sub['id']}", None),
        ("DELETE", "/api/v1/idle-policies/interactive", None),
    ]
    for method, path, body in changes:
        assert httpx.request(method, admin.server.url + path, json=body).status_code == 401
        assert dev.api(method, path, json=body).status_code == 403
    assert httpx.post(admin.server.url + "/api/v1/alerts/1/resolve").status_code == 401

    # a failed job of the workspace: its member sees and resolves the alert; a stranger sees nothing
    broken = dev.submit("perm", ["sh", "-c", "exit 1"])
    dev.wait_status(broken, "FAILED")
    alert = wait_for(
        lambda: next(
            (a for a in dev.cli("alert", "ls", "--json").json()["items"] if a["key"] == broken), None
        ),
        what="the member's alert",
    )
    assert stranger.api("GET", "/api/v1/alerts").json() == {"items": [], "open_count": 0}
    assert stranger.api("POST", f"/api/v1/alerts/{alert['id']}/resolve").status_code == 404
    assert dev.api("POST", f"/api/v1/alerts/{alert['id']}/resolve").status_code == 200
    again = dev.api("POST", f"/api/v1/alerts/{alert['id']}/resolve")
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"

    # refused input: a clear problem, nothing stored
    refused = admin.cli("alert", "channel", "add", "bad", "--webhook", "ftp://example.org/x", check=False)
    assert refused.returncode == 1
    assert "http(s) URL" in refused.stderr
    assert "Traceback" not in refused.stderr
    bad = [
        {"name": "bad", "kind": "email", "target": "not-an-address"},
        {"name": "bad", "kind": "email", "target": "a@example.org", "secret": "x" * 20},
        {"name": "bad", "kind": "apprise", "target": "nosuchservice://token"},
        {"name": "Bad Name", "kind": "webhook", "target": "http://127.0.0.1:9/"},
    ]
    for body in bad:
        assert admin.api("POST", "/api/v1/alert-channels", json=body).status_code == 422, body
    both = admin.api(
        "POST", "/api/v1/alert-subscriptions", json={"channel": "perm-hook", "workspace": "perm", "all": True}
    )
    assert both.status_code == 422
    assert "bad" not in {c["name"] for c in admin.api("GET", "/api/v1/alert-channels").json()}

    # admins: policies, subscriptions and channels come and go
    assert admin.api("DELETE", "/api/v1/idle-policies/service").status_code == 404
    admin.cli("alert", "idle-policy", "set", "--kind", "service", "--workspace", "perm", "--idle-for", "2h")
    policies = admin.cli("alert", "idle-policy", "ls", "--json").json()
    assert {(p["workspace"], p["kind"], p["idle_for_s"]) for p in policies} >= {("perm", "service", 7200)}
    admin.cli("alert", "idle-policy", "rm", "--kind", "service", "--workspace", "perm")
    admin.cli("alert", "unsubscribe", sub["id"])
    admin.cli("alert", "channel", "rm", "perm-hook")
    assert "perm-hook" not in admin.cli("alert", "channel", "ls").stdout
