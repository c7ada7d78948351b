"""A rolling update of a 2-replica service under a steady load of about 50 requests/s through the
gateway: the new revision's replicas are ready before the old ones drain, and not one request fails."""

from __future__ import annotations

import sys
import threading
import time

import httpx

from tests.integration.gateway.conftest import SMALL, Gateway
from tests.support.server import wait_for

VERSIONED = (
    "import http.server, os\n"
    "version = os.environ['VERSION']\n"
    "class Handler(http.server.BaseHTTPRequestHandler):\n"
    "    def log_message(self, *args):\n"
    "        pass\n"
    "    def do_GET(self):\n"
    "        self.send_response(200)\n"
    "        self.end_headers()\n"
    "        self.wfile.write(version.encode())\n"
    "http.server.ThreadingHTTPServer(('127.0.0.1', int(os.environ['PORT'])), Handler).serve_forever()\n"
)


class Load(threading.Thread):
    """About 50 requests/s, one at a time, noting every answer (or failure)."""

    def __init__(self, url: str, token: str | None) -> None:
        super().__init__(daemon=True)
        self.url, self.token = url, token
        self.answers: list[str] = []
        self.failures: list[str] = []
        self.done = threading.Event()

    def run(self) -> None:
        with httpx.Client(headers={"Authorization": f"Bearer {self.token}"}, timeout=10) as client:
            while not self.done.is_set():
                started = time.monotonic()
                try:
                    response = client.get(self.url)
                    if response.status_code == 200:
                        self.answers.append(response.text)
                    else:
                        self.failures.append(f"{response.status_code}: {response.text}")
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                time.sleep(max(0.0, 0.02 - (time.monotonic() - started)))


def test_a_service_rolls_to_a_new_version_without_a_failed_request(gateway: Gateway) -> None:
    admin = gateway.admin
    workload_id = admin.submit(
        "web",
        [sys.executable, "-c", VERSIONED],
        kind="service",
        replicas=2,
        ports=[8080],
        env={"VERSION": "1"},
        resources=SMALL,
        options={"health_path": "/", "health_interval": "0.5"},
    )
    admin.wait_status(workload_id, "RUNNING", timeout=60)
    load = Load(f"{admin.server.url}/proxy/{workload_id}/8080/", admin.token)
    load.start()
    try:
        wait_for(lambda: len(load.answers) >= 50, what="load before the update")
        updated = admin.cli("service", "update", workload_id, "--env", "VERSION=2")
        assert updated.stdout.strip() == f"{workload_id} rolls to revision 1"
        wait_for(
            lambda: load.answers[-50:] == ["2"] * 50, timeout=90, what="every answer to come from version 2"
        )
    finally:
        load.done.set()
        load.join()
    assert load.failures == []
    assert set(load.answers) == {"1", "2"}
    first_new = load.answers.index("2")
    assert "1" not in load.answers[first_new + 100 :]  # the old replicas drained after the new ones served
    wait_for(
        lambda: admin.api("GET", f"/api/v1/workloads/{workload_id}/endpoints").json()[0]["replicas"] == 2,
        what="the old replicas to be gone",
    )
    assert admin.workload(workload_id)["status"] == "RUNNING"
    events = [e["type"] for e in admin.api("GET", f"/api/v1/workloads/{workload_id}/events").json()]
    assert "RolloutRequested" in events
    admin.api("POST", f"/api/v1/workloads/{workload_id}/cancel")
