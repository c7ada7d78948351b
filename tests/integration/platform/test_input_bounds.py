"""Bounds at the edge: what the backend would refuse at launch is refused at submit, sizes are bounded
before a body is read, and every refusal is a 4xx problem+json naming the field."""

from __future__ import annotations

import socket
from typing import Any

import httpx
import pytest

from tests.support.server import User

ONE_MIB = 1024 * 1024


@pytest.fixture(scope="module")
def bounded(module_admin: User) -> User:
    assert module_admin.api("POST", "/api/v1/workspaces", json={"name": "ml-a"}).status_code == 201
    return module_admin


def _problem(response: httpx.Response, status: int, *words: str) -> dict[str, Any]:
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"].startswith("application/problem+json")
    problem: dict[str, Any] = response.json()
    for word in words:
        assert word in problem["detail"], problem["detail"]
    return problem


REFUSED_AT_SUBMIT: list[tuple[dict[str, Any], str]] = [
    ({"command": ["echo", "a\x00b"]}, "command"),
    ({"command": "echo a\x00b"}, "command"),
    ({"command": ["true"], "env": {"X": "a\x00b"}}, "env.X"),
    ({"command": ["true"], "env": {"X\x00": "b"}}, "not valid"),
    ({"command": ["true"], "env": {"X\n": "b"}}, "not valid"),
    ({"command": ["true"], "working_dir": "/tmp/a\x00b"}, "working_dir"),
    ({"command": ["true"], "working_dir": "relative/dir"}, "working_dir"),
    ({"command": ["true"], "working_dir": "/tmp/../etc"}, "working_dir"),
    ({"command": ["echo", "x" * 200_000]}, "command"),  # one argument past MAX_ARG_STRLEN
    ({"command": ["echo"] + ["x" * 100_000] * 6}, "command and env together"),
    ({"command": ["true"], "env": {f"V{i}": "1" for i in range(1025)}}, "env"),
    ({"command": ["true"] * 4097}, "command"),
    ({"command": ["true"], "max_runtime": 10**20}, "max_runtime"),
    ({"command": ["true"], "max_runtime": "99999d"}, "max runtime must be at most"),
    ({"command": ["true"], "volumes": ["x:/../../etc"]}, "volumes.0"),
    ({"command": ["true"], "volumes": ["data:/mnt/\x00"]}, "volumes.0"),
    ({"command": ["true"], "resources": {"gpus": 1, "gpu_model": "../../x"}}, "resources.gpu_model"),
    ({"command": ["true"], "image": "bad image\x00"}, "image"),
    ({"command": ["true"], "options": {"framework": "a\x00"}}, "options"),
    ({"command": ["true"], "priority": 10**30}, "priority"),
    ({"command": ["true"], "resources": {"cpu": "9" * 400}}, "cpu"),
    ({"command": ["true"], "resources": {"memory": "9" * 400 + "Gi"}}, "memory"),
]


@pytest.mark.parametrize(("fields", "named"), REFUSED_AT_SUBMIT)
def test_submit_refuses_what_launch_would_refuse(bounded: User, fields: dict[str, Any], named: str) -> None:
    response = bounded.api("POST", "/api/v1/workloads", json={"workspace": "ml-a", **fields})
    _problem(response, 422, named)
    assert bounded.api("GET", "/api/v1/workloads").json()["total"] == 0


def test_nul_bytes_in_stored_strings_are_refused(bounded: User) -> None:
    cases = [
        ("POST", "/api/v1/workspaces", {"name": "ml-b", "description": "x\x00"}, "description"),
        ("POST", "/api/v1/auth/tokens", {"name": "ci\x00"}, "name"),
        ("POST", "/api/v1/users", {"username": "bob", "password": "password\x00123"}, "password"),
    ]
    for method, path, body, named in cases:
        _problem(
            bounded.api(method, path, json=body), 422, f"{named} must match the pattern", "(no NUL bytes)"
        )
    for model in ("../../x", "A100\x00"):
        body = {"gpu_model": model, "gpu_limit": 1}
        _problem(
            bounded.api("PUT", "/api/v1/workspaces/ml-a/quota", json=body),
            422,
            "gpu_model must match the pattern",
            "(a GPU model name:",
        )


@pytest.mark.parametrize(
    "path", ["/api/v1/workspaces/ml%00a", "/api/v1/workloads?workspace=ml%00a", "/api/v1/workloads/x%00y"]
)
def test_nul_bytes_in_urls_are_refused(bounded: User, path: str) -> None:
    _problem(bounded.api("GET", path), 400, "NUL")


def test_a_job_at_the_bounds_still_runs(bounded: User) -> None:
    env = {f"V{i}": "v" for i in range(1024)}
    argv = ["/bin/sh", "-c", 'echo "$V1023" "$1"', "sh", "y" * 100_000]
    workload_id = bounded.submit("ml-a", argv, env=env, resources={"cpu": "100m", "memory": "16Mi"})
    assert bounded.wait_status(workload_id, "SUCCEEDED", "FAILED")["status"] == "SUCCEEDED"
    assert bounded.cli("logs", workload_id).stdout.strip() == "v " + "y" * 100_000
    bounded.api("POST", "/api/v1/workloads/" + workload_id + "/cancel")


def _read_response(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(h.split(b":")[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def test_an_announced_huge_body_is_refused_before_it_is_read(bounded: User) -> None:
    """The server answers 413 to the headers alone: the 50 MB body is never sent."""
    auth = f"Authorization: Bearer {bounded.token}\r\n".encode()
    with socket.create_connection(("127.0.0.1", bounded.server.port), timeout=10) as sock:
        sock.sendall(
            b"POST /api/v1/workloads HTTP/1.1\r\nHost: x\r\n" + auth + b"Content-Type: application/json\r\n"
            b"Content-Length: 52428800\r\n\r\n{"
        )
        response = _read_response(sock)
        assert response.startswith(b"HTTP/1.1 413"), response[:300]
        assert b"application/problem+json" in response
        assert b"1048576 bytes" in response


def test_a_chunked_body_is_refused_once_it_passes_the_limit(bounded: User) -> None:
    sent = 0

    def chunks() -> Any:
        nonlocal sent
        piece = b'{"workspace": "ml-a", "command": ["' + b"x" * 65536
        while sent < 50 * ONE_MIB:
            sent += len(piece)
            yield piece
            piece = b"x" * 65536

    try:
        response = bounded.api("POST", "/api/v1/workloads", content=chunks())
    except httpx.WriteError:  # the server may stop reading first; then it must not have read it all
        assert sent < 50 * ONE_MIB
        return
    _problem(response, 413, "larger than this route accepts")


def test_a_body_just_under_the_limit_is_read(bounded: User) -> None:
    body = {"workspace": "ml-a", "command": ["true"], "env": {"BIG": "x" * 100_000}}
    response = bounded.api("POST", "/api/v1/workloads", json={**body, "pad": "y" * (ONE_MIB - 200_000)})
    _problem(response, 422, "pad")  # read and validated, not refused for its size


def test_the_connection_stays_usable_after_a_413(bounded: User) -> None:
    auth = f"Authorization: Bearer {bounded.token}\r\n".encode()
    body = b"x" * (ONE_MIB + 1)
    with socket.create_connection(("127.0.0.1", bounded.server.port), timeout=10) as sock:
        sock.sendall(
            b"PUT /api/v1/workspaces/ml-a/quota HTTP/1.1\r\nHost: x\r\n"
            + auth
            + b"Content-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )
        assert _read_response(sock).startswith(b"HTTP/1.1 413")
        for _ in range(2):
            sock.sendall(b"GET /api/v1/auth/me HTTP/1.1\r\nHost: x\r\n" + auth + b"\r\n")
            assert _read_response(sock).startswith(b"HTTP/1.1 200")
