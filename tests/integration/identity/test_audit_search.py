"""Searching the audit trail through the real server and CLI: the server filters (actor, action family,
target, workspace, outcome, time) and pages; each change is filed under the workspace it acted in,
refusals included; bad filters are a clear 4xx."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.support.server import User

JOB = {"command": ["sleep", "600"], "resources": {"cpu": 1, "memory": "64Mi"}}


def _search(admin: User, **params: Any) -> list[dict[str, Any]]:
    response = admin.api("GET", "/api/v1/audit", params=params)
    assert response.status_code == 200, response.text
    records: list[dict[str, Any]] = response.json()
    return records


def test_admins_search_the_trail_on_the_server(admin: User, make_user: Callable[[str], User]) -> None:
    started = datetime.now(UTC) - timedelta(seconds=1)
    for name in ("ml-a", "ml-b"):
        assert admin.api("POST", "/api/v1/workspaces", json={"name": name}).status_code == 201
    kim, lee = make_user("kim"), make_user("lee")
    for user, role in ((kim, "member"), (lee, "viewer")):
        body = {"username": user.name, "role": role}
        assert admin.api("PUT", "/api/v1/workspaces/ml-a/members", json=body).status_code == 200
    job = kim.submit("ml-a", JOB["command"], resources=JOB["resources"])
    assert lee.api("POST", f"/api/v1/workloads/{job}/cancel").status_code == 403  # a viewer
    assert lee.api("POST", "/api/v1/workloads", json={"workspace": "ml-a", **JOB}).status_code == 403
    assert kim.api("POST", f"/api/v1/workloads/{job}/cancel").status_code == 200

    in_ml_a = _search(admin, workspace="ml-a")
    assert [(r["actor"], r["action"], r["result"]) for r in in_ml_a] == [
        ("kim", "workload.cancel", "ok"),
        ("lee", "workload.submit", "denied"),
        ("lee", "workload.cancel", "denied"),  # filed under ml-a once the workload was found
        ("kim", "workload.submit", "ok"),
        ("admin", "workspace.set_member", "ok"),
        ("admin", "workspace.set_member", "ok"),
        ("admin", "workspace.create", "ok"),
    ]
    assert all(r["workspace"] == "ml-a" for r in in_ml_a)
    denied_to_lee = _search(admin, actor="lee", result="denied", action="workload")
    assert [r["action"] for r in denied_to_lee] == ["workload.submit", "workload.cancel"]
    assert [r["actor"] for r in _search(admin, target=job)] == ["kim", "lee", "kim"]
    assert _search(admin, since=datetime.now(UTC).isoformat()) == []
    assert len(_search(admin, since=started.isoformat(), action="workspace.create")) == 2

    # pages: the next page starts below the last id of a full one
    first = _search(admin, workspace="ml-a", limit=3)
    second = _search(admin, workspace="ml-a", limit=3, before=first[-1]["id"])
    assert [r["id"] for r in first + second] == [r["id"] for r in in_ml_a[:6]]

    # the CLI asks the server the same
    out = admin.cli("audit", "-w", "ml-a", "--result", "denied", "--json").json()
    assert [(r["actor"], r["action"]) for r in out] == [
        ("lee", "workload.submit"),
        ("lee", "workload.cancel"),
    ]
    table = admin.cli("audit", "--actor", "kim", "--action", "workload.cancel").stdout
    assert "workload.cancel" in table
    assert "ml-a" in table
    assert "workload.submit" not in table

    # bad filters are refused clearly, for the API and the CLI alike
    for params in ({"result": "maybe"}, {"since": "2026-12-01T09:00:00"}, {"actor": "x" * 65}):
        refused = admin.api("GET", "/api/v1/audit", params=params)
        assert refused.status_code == 422, params
        assert refused.headers["content-type"].startswith("application/problem+json")
    backwards = admin.api(
        "GET", "/api/v1/audit", params={"since": "2026-12-02T00:00:00Z", "until": "2026-12-01T00:00:00Z"}
    )
    assert backwards.status_code == 422
    assert "since must be before until" in backwards.json()["detail"]
    bad = admin.cli("audit", "--since", "yesterday", check=False)
    assert bad.returncode != 0
    assert "is not a time" in bad.stderr
    assert "Traceback" not in bad.stderr
    assert kim.api("GET", "/api/v1/audit", params={"actor": "kim"}).status_code == 403
