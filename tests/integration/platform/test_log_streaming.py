"""Logs that stream: a job printing 10,000 lines/s, read over server-sent events by a client that
disconnects mid-stream and resumes with `Last-Event-ID`; every line arrives exactly once, in order, and
the server keeps no reader (nor file descriptor) of the client that went away. `astrago logs -f` prints
the same lines."""

from __future__ import annotations

import json
import sys

import httpx
import psutil

from tests.integration.platform.conftest import User
from tests.support.server import wait_for

LINES = 30_000
# 100 lines every 10 ms: about 10,000 lines/s for 3 s
CHATTY = (
    "import sys, time\n"
    f"for start in range(0, {LINES}, 100):\n"
    "    batch = range(start, start + 100)\n"
    "    sys.stdout.write(''.join(f'line {n:06d} of the training log\\n' for n in batch))\n"
    "    sys.stdout.flush()\n"
    "    time.sleep(0.01)\n"
)


def read_events(response: httpx.Response, until: int | None) -> tuple[list[str], int | None, bool]:
    """Lines read, the last event id, and whether the stream ended (at most `until` lines)."""
    lines: list[str] = []
    last_id: int | None = None
    kind = "message"
    for raw in response.iter_lines():
        if raw.startswith("event: "):
            kind = raw.removeprefix("event: ")
        elif raw.startswith("id: "):
            last_id = int(raw.removeprefix("id: "))
        elif raw.startswith("data: ") and kind == "message":
            lines.append(json.loads(raw.removeprefix("data: "))["line"])
            if until is not None and len(lines) >= until:
                return lines, last_id, False
        elif raw.startswith("data: ") and kind == "end":
            return lines, last_id, True
    return lines, last_id, False


def test_a_client_resumes_mid_stream_without_losing_or_repeating_a_line(admin: User) -> None:
    admin.cli("workspace", "create", "logs")
    workload_id = admin.submit("logs", [sys.executable, "-c", CHATTY])
    wait_for(lambda: admin.workload(workload_id)["placements"], what="placement")
    assert admin.server.process is not None
    server = psutil.Process(admin.server.process.pid)
    idle_fds = server.num_fds()
    url = f"{admin.server.url}/api/v1/workloads/{workload_id}/logs/stream"
    headers = {"Authorization": f"Bearer {admin.token}"}
    with httpx.Client(headers=headers, timeout=60) as client:
        with client.stream("GET", url) as first:
            assert first.headers["content-type"].startswith("text/event-stream")
            seen, last_id, ended = read_events(first, until=10_000)
        assert not ended
        wait_for(lambda: server.num_fds() <= idle_fds, what="the server to let go of the reader")
        with client.stream("GET", url, headers={"Last-Event-ID": str(last_id)}) as resumed:
            rest, _, ended = read_events(resumed, until=None)
    assert ended
    assert seen + rest == [f"line {n:06d} of the training log" for n in range(LINES)]
    assert admin.wait_status(workload_id, "SUCCEEDED")["status"] == "SUCCEEDED"
    printed = admin.cli("logs", "-f", workload_id).stdout.splitlines()
    assert printed == seen + rest


def test_a_bad_resume_point_is_refused(admin: User) -> None:
    admin.cli("workspace", "create", "logs")
    workload_id = admin.submit("logs", ["true"])
    admin.wait_status(workload_id, "SUCCEEDED")
    url = f"/api/v1/workloads/{workload_id}/logs/stream"
    response = admin.api("GET", url, headers={"Last-Event-ID": "yesterday"})
    assert response.status_code == 422
    assert "Last-Event-ID" in response.json()["detail"]
