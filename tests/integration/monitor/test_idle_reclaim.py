"""Idle reclaim end to end on a real server: the scripted GPU source (telemetry's `scripted:PATH`) makes
one interactive workload's GPU idle (0 %) and another's busy (80 %); the idle one is warned (event, audit,
a signed webhook and an email through a real SMTP server), kept once with `astrago keep` (a second keep
hits the hard cap), then stopped through the normal cancel path; the busy one, an idle batch job (no
policy for jobs) and an idle notebook whose endpoint carries requests through the gateway keep running.
Intervals are seconds (settings), so the whole story takes seconds."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.alert_receivers import WebhookReceiver, smtp_server
from tests.support.server import ADMIN_PASSWORD, ServerProcess, User, wait_for

SECRET = "reclaim-secret-0123456789"
SMALL = {"gpus": 1, "cpu": "100m", "memory": "128Mi"}
HTTP_SERVER = ["sh", "-c", f'exec {sys.executable} -m http.server "$PORT" --bind 127.0.0.1']


def _script(path: Path, utilisation: dict[str, float]) -> None:
    """The scripted source's file: 4 GPUs, one process per workload at a constant utilisation."""
    processes = [
        {"gpu": index, "select": {"workload": workload_id}, "utilization": percent, "memory_mib": 1024}
        for index, (workload_id, percent) in enumerate(utilisation.items())
    ]
    path.write_text(yaml.safe_dump({"gpus": [{"index": i} for i in range(4)], "processes": processes}))


@pytest.fixture
def receivers() -> Iterator[tuple[WebhookReceiver, list[Any], int]]:
    with WebhookReceiver(SECRET).running() as webhook, smtp_server() as (smtp_port, mails):
        yield webhook, mails, smtp_port


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "gpus.yaml"
    _script(path, {})
    return path


@pytest.fixture
def admin(tmp_path: Path, script: Path, receivers: tuple[WebhookReceiver, list[Any], int]) -> Iterator[User]:
    _, _, smtp_port = receivers
    server = ServerProcess(
        data_dir=tmp_path / "data",
        extra_env={
            "ASTRAGO_GPU_SOURCE": f"scripted:{script}",
            "ASTRAGO_TELEMETRY_INTERVAL_S": "1",
            "ASTRAGO_ALERT_EVALUATION_INTERVAL_S": "0.5",
            "ASTRAGO_ALERT_DELIVERY_INTERVAL_S": "0.2",
            "ASTRAGO_ACTIVITY_FLUSH_INTERVAL_S": "0.5",
            # idle 9 s: warned after 3 s idle, stopped 6 s later; a keep adds 6 s, once (the cap)
            "ASTRAGO_RECLAIM_IDLE_FOR_S": "9",
            "ASTRAGO_RECLAIM_WARN_BEFORE_S": "6",
            "ASTRAGO_RECLAIM_POSTPONE_S": "6",
            "ASTRAGO_RECLAIM_MAX_POSTPONE_S": "6",
            "ASTRAGO_SMTP_HOST": "127.0.0.1",
            "ASTRAGO_SMTP_PORT": str(smtp_port),
            "ASTRAGO_SMTP_SECURITY": "none",
        },
    )
    server.start()
    user = User(server, "admin", tmp_path / "admin-home")
    user.login(ADMIN_PASSWORD)
    yield user
    server.stop()


def _events(admin: User, workload_id: str) -> list[str]:
    response = admin.api("GET", f"/api/v1/workloads/{workload_id}/events")
    return [e["type"] for e in response.json()]


def test_idle_notebook_is_warned_kept_then_stopped_while_busy_and_used_ones_run_on(
    admin: User, script: Path, receivers: tuple[WebhookReceiver, list[Any], int]
) -> None:
    webhook, mails, _ = receivers
    assert admin.api("POST", "/api/v1/workspaces", json={"name": "lab"}).status_code == 201
    admin.cli("alert", "channel", "add", "hook", "--webhook", webhook.url, "--secret", SECRET)
    admin.cli("alert", "channel", "add", "mail", "--email", "owner@example.org")
    for channel in ("hook", "mail"):
        admin.cli("alert", "subscribe", channel, "--workspace", "lab", "--rule", "idle-reclaim")

    notebook = {"kind": "interactive", "ports": [8000], "resources": SMALL}
    idle = admin.submit("lab", HTTP_SERVER, name="idle", **notebook)
    busy = admin.submit("lab", HTTP_SERVER, name="busy", **notebook)
    used = admin.submit("lab", HTTP_SERVER, name="used", **notebook)
    batch = admin.submit("lab", ["sleep", "600"], name="batch", resources=SMALL)
    for workload_id in (idle, busy, used, batch):
        admin.wait_status(workload_id, "RUNNING", timeout=60)
    _script(script, {idle: 0, busy: 80, used: 0, batch: 0})

    # someone works in the "used" notebook all along: a request through the gateway every 0.3 s
    stop_using = threading.Event()
    answers: list[int] = []

    def use_notebook() -> None:
        while not stop_using.wait(0.3):
            answers.append(admin.api("GET", f"/proxy/{used}/8000/").status_code)

    user = threading.Thread(target=use_notebook, daemon=True)
    user.start()
    try:
        _reclaim_story(admin, webhook, mails, idle)
    finally:
        stop_using.set()
        user.join(10)
    assert answers
    assert set(answers) == {200}

    # the busy notebook, the idle batch job and the notebook in use were never warned
    for workload_id in (busy, batch, used):
        assert admin.workload(workload_id)["status"] == "RUNNING"
        assert "IdleWarning" not in _events(admin, workload_id)
    assert [key for _, _, key in webhook.events()] == [idle, idle]


def _reclaim_story(admin: User, webhook: WebhookReceiver, mails: list[Any], idle: str) -> None:
    """Warned, kept once (not twice: the cap), notified, then stopped."""

    # the warning: an event, and what the console's banner shows
    wait_for(lambda: "IdleWarning" in _events(admin, idle), timeout=30, what="the warning")
    pending = admin.api("GET", f"/api/v1/workloads/{idle}/reclaim").json()
    assert pending["can_postpone"] is True

    # "keep running": once, up to the hard cap; a second keep is refused with the reason
    kept = admin.cli("keep", idle, "--json").json()
    assert kept["stop_at"] > pending["stop_at"]
    assert kept["kept_by"] == "admin"
    again = admin.cli("keep", idle, check=False)
    assert again.returncode == 1
    assert "as long as its policy allows" in again.stderr
    assert "Traceback" not in again.stderr

    # the warning's notifications: a signed webhook and an email that says how to keep it
    wait_for(lambda: ("fired", "idle-reclaim", idle) in webhook.events(), what="the webhook's warning")
    wait_for(lambda: mails, what="the warning email")
    assert idle in mails[0].get_payload()
    assert "astrago keep" in mails[0].get_payload()

    # then the graceful stop, through the normal cancel path
    deadline = time.monotonic() + 30
    while admin.workload(idle)["status"] == "RUNNING":
        assert time.monotonic() < deadline, "the idle notebook was not stopped"
        time.sleep(0.3)
    stopped = admin.wait_status(idle, "CANCELLED", timeout=30)
    assert stopped["reason"].startswith("reclaimed: idle")
    events = _events(admin, idle)
    assert events.index("IdleWarning") < events.index("IdleReclaimPostponed") < events.index("IdleReclaimed")
    wait_for(lambda: ("resolved", "idle-reclaim", idle) in webhook.events(), what="the resolve message")

    # every step is in the audit trail
    audit = admin.api("GET", "/api/v1/audit", params={"limit": 200}).json()
    steps = {(r["action"], r["actor"]) for r in audit if r["target"] == idle}
    assert ("workload.idle_warning", "system:idle-reclaim") in steps
    assert ("workload.keep", "admin") in steps
    assert ("workload.reclaim", "system:idle-reclaim") in steps
