"""A workload the configured backend cannot run as asked is refused at submission, naming the backend and
what it lacks; nothing is stored (the embedded default runs the local backend)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.server import User


@pytest.fixture(scope="module")
def local_admin(module_admin: User) -> User:
    assert module_admin.api("POST", "/api/v1/workspaces", json={"name": "caps"}).status_code == 201
    return module_admin


@pytest.mark.parametrize(
    ("fields", "missing"),
    [
        ({"image": "pytorch/pytorch:2.3"}, ["images"]),
        ({"kind": "distributed", "replicas": 2, "options": {"framework": "mpi"}}, ["mpi"]),
        ({"options": {"expose": "nodeport"}}, ["node_ports", "option:expose"]),
    ],
)
def test_what_the_local_backend_cannot_do_is_refused_by_name(
    local_admin: User, fields: dict[str, Any], missing: list[str]
) -> None:
    body = {"workspace": "caps", "command": ["true"], **fields}
    response = local_admin.api("POST", "/api/v1/workloads", json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["backend"] == "local"
    assert problem["missing"] == missing[:1]
    assert "the local backend" in problem["detail"]
    listed = local_admin.api("GET", "/api/v1/workloads", params={"workspace": "caps"}).json()
    assert listed["total"] == 0


def test_the_cli_prints_the_refusal_without_a_traceback(local_admin: User) -> None:
    result = local_admin.cli("run", "-w", "caps", "--image", "busybox", "--", "true", check=False)
    assert result.returncode == 1
    assert "the local backend of this server cannot run this workload: it lacks images" in result.stderr
    assert "Traceback" not in result.stderr
