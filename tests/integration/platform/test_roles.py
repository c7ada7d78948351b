"""The role matrix: admin / manager / member / viewer / outsider × every endpoint family, over HTTP.

Refusals are 403 problem+json (or 404 where existence must not leak) and are written to the audit trail."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.support.server import Gate, User

JOB = {"command": ["true"], "resources": {"cpu": "100m", "memory": "64Mi"}}
WHOLE_NODE = {"resources": {"cpu": 2, "memory": "64Mi"}}  # the test node has 2 cores


def _queued(user: User) -> str:
    """A workload of `user` in ml-a that stays pending (the blocker holds every core)."""
    return user.submit("ml-a", ["sleep", "600"], **WHOLE_NODE)


@pytest.fixture
def team(admin: User, make_user: Callable[[str], User], gate: Gate) -> dict[str, User]:
    people = {"admin": admin}
    for name in ("manager", "member", "viewer", "outsider"):
        people[name] = make_user(name)
    for workspace in ("ml-a", "ml-b"):
        assert admin.api("POST", "/api/v1/workspaces", json={"name": workspace}).status_code == 201
    members = [("ml-a", "manager"), ("ml-a", "member"), ("ml-a", "viewer"), ("ml-b", "outsider")]
    for workspace, name in members:
        role = "manager" if name == "outsider" else name
        body = {"username": name, "role": role}
        assert admin.api("PUT", f"/api/v1/workspaces/{workspace}/members", json=body).status_code == 200
    blocker = admin.submit("ml-b", gate.command(), **WHOLE_NODE)
    admin.wait_status(blocker, "RUNNING")
    return people


def _status(user: User, method: str, path: str, **kwargs: object) -> int:
    response = user.api(method, path, **kwargs)  # type: ignore[arg-type]
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/problem+json"), response.text
        assert response.json()["detail"]
    return response.status_code


ALLOWED = {
    # family: action -> roles that may do it (everyone else is refused)
    "create user": {"admin"},
    "list users": {"admin"},
    "create workspace": {"admin"},
    "view workspace": {"admin", "manager", "member", "viewer"},
    "add member": {"admin", "manager"},
    "set quota": {"admin"},
    "view quota": {"admin", "manager", "member", "viewer"},
    "submit": {"admin", "manager", "member"},
    "list ml-a workloads": {"admin", "manager", "member", "viewer"},
    "get workload": {"admin", "manager", "member", "viewer"},
    "cancel others' workload": {"admin", "manager"},
    "nodes": {"admin", "manager", "member", "viewer", "outsider"},
    "audit": {"admin"},
}


def _attempt(action: str, user: User, target_workload: str, n: int) -> int:
    match action:
        case "create user":
            return _status(
                user, "POST", "/api/v1/users", json={"username": f"u{n}", "password": "password-1"}
            )
        case "list users":
            return _status(user, "GET", "/api/v1/users")
        case "create workspace":
            return _status(user, "POST", "/api/v1/workspaces", json={"name": f"ws-{n}"})
        case "view workspace":
            return _status(user, "GET", "/api/v1/workspaces/ml-a")
        case "add member":
            body = {"username": "outsider", "role": "viewer"}
            code = _status(user, "PUT", "/api/v1/workspaces/ml-a/members", json=body)
            if code == 200:  # undo, so the outsider stays an outsider for the next rows
                assert _status(user, "DELETE", "/api/v1/workspaces/ml-a/members/outsider") == 204
            return code
        case "set quota":
            return _status(user, "PUT", "/api/v1/workspaces/ml-a/quota", json={"gpu_limit": 4})
        case "view quota":
            return _status(user, "GET", "/api/v1/workspaces/ml-a/quota")
        case "submit":
            return _status(user, "POST", "/api/v1/workloads", json={"workspace": "ml-a", **JOB})
        case "list ml-a workloads":
            return _status(user, "GET", "/api/v1/workloads", params={"workspace": "ml-a"})
        case "get workload":
            return _status(user, "GET", f"/api/v1/workloads/{target_workload}")
        case "cancel others' workload":
            return _status(user, "POST", f"/api/v1/workloads/{target_workload}/cancel")
        case "nodes":
            return _status(user, "GET", "/api/v1/nodes")
        case "audit":
            return _status(user, "GET", "/api/v1/audit")
    raise AssertionError(action)


def test_role_matrix(team: dict[str, User]) -> None:
    failures = []
    n = 0
    shared = _queued(team["member"])
    for action, allowed in ALLOWED.items():
        for role, user in team.items():
            n += 1
            target = shared
            if action == "cancel others' workload":  # a fresh one each time, owned by someone else
                target = _queued(team["manager"] if role == "member" else team["member"])
            code = _attempt(action, user, target, n)
            ok = code < 400
            if ok != (role in allowed):
                failures.append(f"{role} {action}: HTTP {code}")
            elif not ok and code not in (403, 404):
                failures.append(f"{role} {action}: refused with HTTP {code}, expected 403/404")
    assert not failures, failures


def test_outsider_cannot_see_other_teams_workloads(team: dict[str, User]) -> None:
    workload_id = _queued(team["member"])
    outsider = team["outsider"]
    assert outsider.api("GET", f"/api/v1/workloads/{workload_id}").status_code == 404
    listed = outsider.api("GET", "/api/v1/workloads").json()
    assert workload_id not in [w["id"] for w in listed["items"]]
    # another team's workspace answers exactly as one that does not exist: names cannot be probed
    theirs = outsider.api("GET", "/api/v1/workloads", params={"workspace": "ml-a"})
    missing = outsider.api("GET", "/api/v1/workloads", params={"workspace": "ml-zz"})
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json()["detail"].replace("ml-a", "ml-zz") == missing.json()["detail"]
    for path in ("/api/v1/workspaces/{}", "/api/v1/workspaces/{}/quota"):
        theirs, missing = (outsider.api("GET", path.format(name)) for name in ("ml-a", "ml-zz"))
        assert theirs.status_code == missing.status_code == 404
        assert theirs.json()["detail"].replace("ml-a", "ml-zz") == missing.json()["detail"]
    assert outsider.api("POST", f"/api/v1/workloads/{workload_id}/cancel").status_code == 404
    assert team["member"].workload(workload_id)["status"] == "PENDING"


def test_members_cancel_their_own_and_refusals_are_audited(team: dict[str, User]) -> None:
    member, viewer = team["member"], team["viewer"]
    own = _queued(member)
    assert viewer.api("POST", f"/api/v1/workloads/{own}/cancel").status_code == 403
    assert member.api("POST", f"/api/v1/workloads/{own}/cancel").status_code == 200
    refused = viewer.cli("run", "-w", "ml-a", "--", "true", check=False)
    assert refused.returncode == 1
    assert "viewer" in refused.stderr
    assert "Traceback" not in refused.stderr
    records = team["admin"].api("GET", "/api/v1/audit", params={"limit": 200}).json()
    denied = [(r["actor"], r["action"]) for r in records if r["result"] == "denied"]
    assert ("viewer", "workload.cancel") in denied
    assert ("viewer", "workload.submit") in denied
    assert ("member", "workload.cancel", "ok") in [(r["actor"], r["action"], r["result"]) for r in records]


def test_anonymous_and_revoked_tokens_get_401(team: dict[str, User]) -> None:
    anonymous = User(team["admin"].server, "nobody", team["admin"].config_dir)
    response = anonymous.api("GET", "/api/v1/nodes")
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    member = team["member"]
    token = member.api("POST", "/api/v1/auth/tokens", json={"name": "ci"}).json()
    scripted = User(member.server, "member", member.config_dir, token=token["token"])
    assert scripted.api("GET", "/api/v1/nodes").status_code == 200
    assert member.api("DELETE", f"/api/v1/auth/tokens/{token['id']}").status_code == 204
    revoked = scripted.api("GET", "/api/v1/nodes")
    assert revoked.status_code == 401
    assert "not valid" in revoked.json()["detail"]
