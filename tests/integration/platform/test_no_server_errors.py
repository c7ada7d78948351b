"""The inputs that once reached a 500 (found by fuzzing the real server) each get their 4xx problem+json,
and a refused request never costs the client its keep-alive connection."""

from __future__ import annotations

import socket
from typing import Any

import httpx
import pytest

from tests.support.raw_http import http_exchange
from tests.support.server import User, wait_for

INT64_MAX = 2**63 - 1


@pytest.fixture(scope="module")
def fuzzed(module_admin: User) -> User:
    for name in ("ml-a", "ml-gone", "ml-live"):
        assert module_admin.api("POST", "/api/v1/workspaces", json={"name": name}).status_code == 201
    return module_admin


def _assert_problem(response: httpx.Response, status: int, *words: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    for word in words:
        assert word in problem["detail"], problem["detail"]
    return problem


def _raw_json(user: User, method: str, path: str, body: str) -> httpx.Response:
    """Python's JSON reader accepts `Infinity`, `NaN` and 1e309 (as inf): send them exactly as written."""
    return user.api(method, path, content=body, headers={"Content-Type": "application/json"})


@pytest.mark.parametrize(
    ("path", "field"),
    [
        (f"/api/v1/workloads?cursor={INT64_MAX + 1}", "cursor"),
        (f"/api/v1/workloads?cursor={10**30}", "cursor"),
        ("/api/v1/workloads?cursor=-1", "cursor"),
        (f"/api/v1/audit?before={INT64_MAX + 1}", "before"),
        (f"/api/v1/audit?before={-(2**63) - 1}", "before"),
    ],
)
def test_cursors_beyond_int64_are_refused(fuzzed: User, path: str, field: str) -> None:
    _assert_problem(fuzzed.api("GET", path), 422, field)


def test_cursors_at_int64_bounds_are_served(fuzzed: User) -> None:
    assert fuzzed.api("GET", f"/api/v1/workloads?cursor={INT64_MAX}").status_code == 200
    assert fuzzed.api("GET", f"/api/v1/audit?before={INT64_MAX}").status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"cpu_limit": 1e308}', "cpu_limit"),
        ('{"cpu_guaranteed": "1e308"}', "cpu_guaranteed"),
        ('{"gpu_limit": 1e308}', "gpu_limit"),
        ('{"memory_limit": 1000000000000000000000000000000}', "memory_limit"),
        ('{"memory_guaranteed": "99999999999999999999999Ti"}', "memory_guaranteed"),
        ('{"gpu_limit": "Infinity"}', "gpu_limit"),
        ('{"cpu_limit": "Infinity"}', "cpu_limit"),
        ('{"cpu_limit": Infinity}', "cpu_limit"),
        ('{"gpu_guaranteed": NaN}', "gpu_guaranteed"),
        ('{"memory_limit": -Infinity}', "memory_limit"),
    ],
)
def test_quota_amounts_must_be_finite_and_bounded(fuzzed: User, body: str, field: str) -> None:
    _assert_problem(_raw_json(fuzzed, "PUT", "/api/v1/workspaces/ml-a/quota", body), 422, field)
    assert fuzzed.api("GET", "/api/v1/workspaces/ml-a/quota").json()["entries"] == []


@pytest.mark.parametrize("cpu", ["1e309", "-1e309", "NaN", '"1e309"', "1e300", '"1e300m"'])
def test_resource_requests_must_be_finite_and_bounded(fuzzed: User, cpu: str) -> None:
    body = '{"workspace": "ml-a", "command": ["true"], "resources": {"cpu": ' + cpu + "}}"
    _assert_problem(_raw_json(fuzzed, "POST", "/api/v1/workloads", body), 422, "cpu")
    assert fuzzed.api("GET", "/api/v1/workloads").json()["total"] == 0


def test_deleting_a_workspace_cascades_its_finished_workloads(fuzzed: User) -> None:
    done = fuzzed.submit("ml-gone", ["true"], resources={"cpu": "100m", "memory": "16Mi"})
    fuzzed.wait_status(done, "SUCCEEDED")
    fuzzed.api("PUT", "/api/v1/workspaces/ml-gone/quota", json={"cpu_limit": 4})

    assert fuzzed.api("DELETE", "/api/v1/workspaces/ml-gone").status_code == 204
    assert fuzzed.api("GET", "/api/v1/workspaces/ml-gone").status_code == 404
    assert fuzzed.api("GET", f"/api/v1/workloads/{done}").status_code == 404
    audit = fuzzed.api("GET", "/api/v1/audit?limit=5").json()
    assert any(a["action"] == "workspace.delete" and a["target"] == "ml-gone" for a in audit)
    # the name is free again, and the new workspace starts empty
    assert fuzzed.api("POST", "/api/v1/workspaces", json={"name": "ml-gone"}).status_code == 201
    assert fuzzed.api("GET", "/api/v1/workloads?workspace=ml-gone").json()["total"] == 0


def test_deleting_a_workspace_with_live_workloads_names_them(fuzzed: User, tmp_path: Any) -> None:
    gate = fuzzed.server.shared_dir / f"open-{tmp_path.name}"  # where the sandboxed job can see it
    body = {"name": "still-running", "resources": {"cpu": "100m", "memory": "16Mi"}}
    live = fuzzed.submit("ml-live", ["/bin/sh", "-c", f"while [ ! -e {gate} ]; do sleep 0.1; done"], **body)
    try:
        fuzzed.wait_status(live, "RUNNING")
        problem = _assert_problem(
            fuzzed.api("DELETE", "/api/v1/workspaces/ml-live"), 409, "still-running", live
        )
        assert problem["title"] == "Conflict"
        assert fuzzed.api("GET", "/api/v1/workspaces/ml-live").status_code == 200
    finally:
        gate.touch()
    fuzzed.wait_status(live, "SUCCEEDED")
    assert fuzzed.api("DELETE", "/api/v1/workspaces/ml-live").status_code == 204


def test_logs_of_a_workload_that_failed_to_start_are_refused_before_headers(fuzzed: User) -> None:
    """The local backend refuses a working directory that does not exist at launch (it may vanish between
    submit and launch), so the workload has a placement but no log."""
    body = {"working_dir": "/nonexistent/astrago-test-dir", "resources": {"cpu": "100m", "memory": "16Mi"}}
    failed = fuzzed.submit("ml-a", ["true"], **body)
    workload = fuzzed.wait_status(failed, "FAILED")
    assert "does not exist" in (workload["reason"] or "")
    for follow in ("false", "true"):
        response = fuzzed.api("GET", f"/api/v1/workloads/{failed}/logs?follow={follow}")
        _assert_problem(response, 409, "no logs")
    result = fuzzed.cli("logs", failed, check=False)
    assert result.returncode == 1
    assert "no logs" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "refused",
    [
        b"GET /api/v1/workloads?cursor=99999999999999999999 HTTP/1.1\r\nHost: x\r\n{auth}\r\n",
        b"PUT /api/v1/workspaces/ml-a/quota HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\n"
        b"Content-Length: 20\r\n\r\n" + b'{"cpu_limit": 1e309}',
        b"GET /api/v1/nope HTTP/1.1\r\nHost: x\r\n\r\n",
    ],
    ids=["cursor", "quota", "unknown-path"],
)
def test_a_refused_request_keeps_the_connection_usable(fuzzed: User, refused: bytes) -> None:
    auth = f"Authorization: Bearer {fuzzed.token}\r\n".encode()
    me = b"GET /api/v1/auth/me HTTP/1.1\r\nHost: x\r\n" + auth + b"\r\n"
    with socket.create_connection(("127.0.0.1", fuzzed.server.port), timeout=10) as sock:
        first = http_exchange(sock, refused.replace(b"{auth}", auth))
        assert first.startswith((b"HTTP/1.1 4",)), first[:200]
        for _ in range(2):
            again = http_exchange(sock, me)
            assert again.startswith(b"HTTP/1.1 200"), again[:200]


def test_server_log_has_no_unexpected_errors(fuzzed: User) -> None:
    wait_for(lambda: fuzzed.api("GET", "/api/v1/auth/me").status_code == 200, what="the server")
    assert "unexpected error" not in fuzzed.server.logs()
    assert "Traceback" not in fuzzed.server.logs()
