"""Local accounts as people use them: sessions that expire, API tokens with expiry and read-only scope,
the user lifecycle, password changes, brute-force limits, and the audit trail of all of it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support.server import ADMIN_PASSWORD, ServerProcess, User

JOB = {"command": ["sleep", "600"], "resources": {"cpu": 2, "memory": "64Mi"}}


def _server(tmp_path: Path, **settings: str) -> ServerProcess:
    server = ServerProcess(data_dir=tmp_path / "data", simulate_gpus="1xA100-80GB")
    server.extra_env = {f"ASTRAGO_{k.upper()}": v for k, v in settings.items()}
    server.start()
    return server


@pytest.fixture
def quick_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """Short session lifetimes, so that expiry is observable in a test."""
    server = _server(tmp_path, session_idle_s="6", session_absolute_s="14")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def shared_admin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[User]:
    """One server for the tests that only add their own users and tokens."""
    root = tmp_path_factory.mktemp("accounts")
    server = ServerProcess(data_dir=root / "data", simulate_gpus="1xA100-80GB")
    server.start()
    admin = User(server, "admin", root / "admin-home")
    admin.login(ADMIN_PASSWORD)
    yield admin
    server.stop()


def _new_user(admin: User, name: str, password: str = "password-123") -> User:
    created = admin.api("POST", "/api/v1/users", json={"username": name, "password": password})
    assert created.status_code == 201, created.text
    token = _login(admin.server, name, password).json()["token"]
    return User(admin.server, name, admin.config_dir.parent / f"{name}-home", token=token)


def _login(server: ServerProcess, name: str, password: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/api/v1/auth/login", json={"username": name, "password": password}, timeout=30
    )


def _get(server: ServerProcess, token: str, path: str) -> httpx.Response:
    return httpx.get(f"{server.url}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=30)


def test_cli_login_keeps_an_expiring_session_and_it_ends_when_idle_or_at_its_absolute_time(
    quick_server: ServerProcess, tmp_path: Path
) -> None:
    admin = User(quick_server, "admin", tmp_path / "admin-home")
    result = admin.cli(
        "login", "--url", quick_server.url, "--username", "admin", "--password-stdin", stdin=ADMIN_PASSWORD
    )
    assert "expires" in result.stdout
    admin.login(ADMIN_PASSWORD)
    assert admin.token
    sessions = json.loads(admin.cli("token", "list", "--json").stdout)
    assert {t["kind"] for t in sessions} == {"session"}  # no never-expiring API token is minted any more
    assert all(t["expires_at"] for t in sessions)

    time.sleep(7)  # idle longer than 6 s
    refused = _get(quick_server, admin.token, "/api/v1/auth/me")
    assert refused.status_code == 401
    assert "idle" in refused.json()["detail"]

    busy = _login(quick_server, "admin", ADMIN_PASSWORD).json()["token"]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # kept busy, it still ends at its absolute lifetime (14 s)
        response = _get(quick_server, busy, "/api/v1/auth/me")
        if response.status_code == 401:
            assert "expired" in response.json()["detail"]
            break
        time.sleep(0.5)
    else:
        pytest.fail("a session in use outlived its absolute lifetime")


def test_api_tokens_expire_can_be_read_only_and_are_revoked_by_owner_or_admin(shared_admin: User) -> None:
    admin = shared_admin
    kim = _new_user(admin, "kim")
    created = kim.cli("token", "create", "ci")
    secret = created.stdout.strip()
    assert "expires" in created.stderr
    listed = {t["name"]: t for t in json.loads(kim.cli("token", "list", "--json").stdout)}
    days = (
        time.mktime(time.strptime(listed["ci"]["expires_at"][:19], "%Y-%m-%dT%H:%M:%S")) - time.time()
    ) / 86400
    assert 89 < days <= 90  # the default expiry
    assert listed["ci"]["last_used_at"] is None

    weekly = kim.cli("token", "create", "weekly", "--expires", "7", "--read-only").stdout.strip()
    reader = User(admin.server, "kim", kim.config_dir, token=weekly)
    assert reader.api("GET", "/api/v1/workspaces").status_code == 200
    refused = reader.api("POST", "/api/v1/auth/tokens", json={"name": "escalate"})
    assert refused.status_code == 403
    assert "read-only" in refused.json()["detail"]

    script = User(admin.server, "kim", kim.config_dir, token=secret)
    assert script.api("GET", "/api/v1/auth/me").status_code == 200
    listed = {t["name"]: t for t in json.loads(kim.cli("token", "list", "--json").stdout)}
    assert listed["ci"]["last_used_at"] is not None
    assert listed["weekly"]["scope"] == "read"

    other = _new_user(admin, "lee")
    assert other.api("DELETE", f"/api/v1/auth/tokens/{listed['ci']['id']}").status_code == 404
    everyone = json.loads(admin.cli("token", "list", "--all", "--json").stdout)
    assert {"kim", "lee", "admin"} <= {t["username"] for t in everyone}
    admin.cli("token", "revoke", listed["ci"]["id"])
    assert script.api("GET", "/api/v1/auth/me").status_code == 401
    kim.cli("token", "revoke", listed["weekly"]["id"])
    assert reader.api("GET", "/api/v1/auth/me").status_code == 401


def test_disable_enable_delete_and_password_change(shared_admin: User) -> None:
    admin = shared_admin
    kim = _new_user(admin, "jo")
    admin.api("PUT", "/api/v1/workspaces/default/members", json={"username": "jo", "role": "member"})
    job = kim.submit("default", ["sleep", "600"], resources={"cpu": "100m", "memory": "64Mi"})

    admin.cli("user", "disable", "jo")
    refused = kim.api("GET", "/api/v1/auth/me")
    assert refused.status_code == 401  # refused at the next request
    assert _login(admin.server, "jo", "password-123").status_code == 401
    assert admin.workload(job)["status"] in {"PENDING", "ADMITTED", "STARTING", "RUNNING"}  # work goes on
    users = {u["username"]: u for u in json.loads(admin.cli("user", "list", "--json").stdout)}
    assert users["jo"]["active"] is False

    admin.cli("user", "enable", "jo")
    kim.token = _login(admin.server, "jo", "password-123").json()["token"]
    assert kim.api("GET", "/api/v1/auth/me").status_code == 200

    busy = admin.cli("user", "delete", "jo", check=False)
    assert busy.returncode == 1
    assert "unfinished" in busy.stderr
    assert "Traceback" not in busy.stderr
    assert admin.api("POST", f"/api/v1/workloads/{job}/cancel").status_code == 200
    admin.wait_status(job, "CANCELLED")
    assert admin.cli("user", "disable", "admin", check=False).returncode == 1  # not yourself

    # Password change: the current one is needed, the policy applies, other sessions end.
    other_session = _login(admin.server, "jo", "password-123").json()["token"]
    change = {"current_password": "wrong-password", "new_password": "a-much-better-one"}
    assert kim.api("POST", "/api/v1/auth/password", json=change).status_code == 403
    weak = {"current_password": "password-123", "new_password": "password123"}
    assert kim.api("POST", "/api/v1/auth/password", json=weak).status_code == 422
    kim.cli("passwd", "--password-stdin", stdin="password-123\na-much-better-one\na-much-better-one\n")
    assert kim.api("GET", "/api/v1/auth/me").status_code == 200  # this session goes on
    assert _get(admin.server, other_session, "/api/v1/auth/me").status_code == 401
    assert _login(admin.server, "jo", "password-123").status_code == 401
    assert _login(admin.server, "jo", "a-much-better-one").status_code == 200

    admin.cli("user", "delete", "jo")
    assert kim.api("GET", "/api/v1/auth/me").status_code == 401
    actions = {(r["action"], r["result"]) for r in admin.api("GET", "/api/v1/audit").json()}
    for expected in [
        ("user.update", "ok"),
        ("user.delete", "ok"),
        ("user.delete", "invalid"),
        ("user.password", "ok"),
        ("user.password", "denied"),
        ("auth.login", "ok"),
        ("auth.login", "denied"),
    ]:
        assert expected in actions


def _concurrently(server: ServerProcess, attempts: list[tuple[str, str]]) -> list[httpx.Response]:
    """All at once, so that they fall in one window even on a loaded machine (argon2 takes ~0.1-0.5 s)."""
    with ThreadPoolExecutor(max_workers=len(attempts)) as pool:
        return list(pool.map(lambda a: _login(server, *a), attempts))


def test_brute_force_is_refused_with_429_and_the_right_password_works_after_the_window(
    tmp_path: Path,
) -> None:
    server = _server(tmp_path, login_failure_window_s="15", login_failures_per_address="1000")
    try:
        wrong = _concurrently(server, [("admin", f"guess-{n}") for n in range(10)])
        assert [r.status_code for r in wrong] == [401] * 10
        limited = _login(server, "admin", "guess-10")
        assert limited.status_code == 429
        assert limited.headers["content-type"].startswith("application/problem+json")
        retry_after = int(limited.headers["Retry-After"])
        assert 1 <= retry_after <= 15
        assert _login(server, "admin", ADMIN_PASSWORD).status_code == 429  # not even the right one, yet
        assert _login(server, "someone", "guess").status_code == 401  # other accounts are not locked
        time.sleep(retry_after + 0.5)
        assert _login(server, "admin", ADMIN_PASSWORD).status_code == 200
    finally:
        server.stop()


def test_failures_are_limited_per_address_and_unknown_names_answer_like_wrong_passwords(
    tmp_path: Path,
) -> None:
    server = _server(tmp_path, login_failure_window_s="300", login_failures_per_address="5")
    try:
        answers = _concurrently(server, [(f"someone-{n}", "guess") for n in range(4)] + [("admin", "guess")])
        assert {r.status_code for r in answers} == {401}
        assert {r.json()["detail"] for r in answers} == {"wrong username or password"}
        limited = _login(server, "yet-another", "guess")
        assert limited.status_code == 429
        assert "Retry-After" in limited.headers
    finally:
        server.stop()
