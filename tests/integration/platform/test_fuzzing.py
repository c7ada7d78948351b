"""Schemathesis fuzzes the real server from its OpenAPI document, with every check, as an admin and as
a workspace member: no server error, no status or content type the document does not state, no answer
that violates its schema. A failure prints schemathesis' report with a `curl` line that reproduces it.

The server runs with `--role api` (no controllers), so that nothing a fuzzed workload asks for is ever
started: generated commands are arbitrary strings, and the local backend runs commands on this
machine. The controllers' side of the same inputs is covered by the other tests of this package."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import ADMIN_PASSWORD, ServerProcess, User

CONFIG = Path(__file__).with_name("fuzz") / "schemathesis.toml"
ST = [sys.executable, "-m", "schemathesis.cli"]


@pytest.fixture(scope="module")
def api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("fuzzed-server")
    server = ServerProcess(data_dir=root / "data", extra_args=["--role", "api"])
    server.start()
    yield server
    server.stop()


def _token(server: ServerProcess, home: Path, username: str, password: str) -> User:
    user = User(server, username, home)
    login = user.api("POST", "/api/v1/auth/login", json={"username": username, "password": password})
    assert login.status_code == 200, login.text
    user.token = login.json()["token"]
    return user


@pytest.fixture(scope="module")
def people(api_server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> dict[str, User]:
    home = tmp_path_factory.mktemp("fuzz-homes")
    admin = _token(api_server, home / "admin", "admin", ADMIN_PASSWORD)
    assert admin.api("POST", "/api/v1/workspaces", json={"name": "ml-a"}).status_code == 201
    created = admin.api("POST", "/api/v1/users", json={"username": "mina", "password": "password-123"})
    assert created.status_code == 201, created.text
    member = {"username": "mina", "role": "member"}
    assert admin.api("PUT", "/api/v1/workspaces/ml-a/members", json=member).status_code == 200
    return {"admin": admin, "member": _token(api_server, home / "mina", "mina", "password-123")}


# The member first: the admin's run may delete ml-a. The admin's run takes every phase; the member's skips
# the coverage phase (about two thirds of the time), whose boundary values meet the same validation in
# both runs: what differs for a member is authorization, which depends on the operation, not the values.
@pytest.mark.parametrize(
    ("role", "phases"),
    [("member", "examples,fuzzing,stateful"), ("admin", "examples,coverage,fuzzing,stateful")],
)
def test_fuzzing_finds_no_error(
    api_server: ServerProcess, people: dict[str, User], role: str, phases: str
) -> None:
    user = people[role]
    command = [
        *ST,
        "--config-file",
        str(CONFIG),
        "run",
        f"{api_server.url}/openapi.json",
        "--checks",
        "all",
        "--phases",
        phases,
        "--header",
        f"Authorization: Bearer {user.token}",
        "--no-color",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, cwd=api_server.data_dir)
    report = done.stdout[-20000:] + done.stderr[-5000:]
    assert done.returncode == 0, report
    assert "Traceback" not in api_server.logs(), api_server.logs()[-5000:]
    assert user.api("GET", "/api/v1/auth/me").status_code == 200  # the run did not lock itself out
