"""A job cannot reach the platform: a real `astrago server` with the real local backend (bubblewrap), a
workspace member's job trying what an attacker would, file modes under umask 000, and single-user mode."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.server import ADMIN_PASSWORD, ServerProcess, User
from tests.unit.backends.local.factories import job_python

JOB = {"resources": {"cpu": "100m", "memory": "64Mi"}}
# Each attempt is recorded as what it read, or the error it got.
PROBE = """
import json, os, sys
server_pid, database, other = sys.argv[1:4]

def attempt(read):
    try:
        return {"read": read()}
    except OSError as exc:
        return {"error": type(exc).__name__}

def cmdline(pid):
    with open(f"/proc/{pid}/cmdline", "rb") as file:
        return file.read().split(b"\\0")[:4]

pids = sorted(int(entry) for entry in os.listdir("/proc") if entry.isdigit())
print(json.dumps({
    "server_environ": attempt(lambda: open(f"/proc/{server_pid}/environ", "rb").read().decode("latin-1")),
    "server_cmdline": attempt(lambda: open(f"/proc/{server_pid}/cmdline", "rb").read().decode("latin-1")),
    "database": attempt(lambda: open(database, "rb").read(64).hex()),
    "database_dir": attempt(lambda: os.listdir(os.path.dirname(database))),
    "other_workspace_file": attempt(lambda: open(other).read()),
    "pids": pids,
    "cmdlines": [[part.decode() for part in cmdline(pid)] for pid in pids if pid != os.getpid()],
    "env": dict(os.environ),
    "uid": os.getuid(),
}))
"""


@pytest.fixture
def teams(admin: User, make_user: Callable[[str], User]) -> dict[str, User]:
    """alice is a member of ml-a only; ml-b is another team's workspace."""
    for workspace in ("ml-a", "ml-b"):
        assert admin.api("POST", "/api/v1/workspaces", json={"name": workspace}).status_code == 201
    alice = make_user("alice")
    body = {"username": "alice", "role": "member"}
    assert admin.api("PUT", "/api/v1/workspaces/ml-a/members", json=body).status_code == 200
    return {"admin": admin, "alice": alice}


def logs_of(user: User, workload_id: str) -> str:
    response = user.api("GET", f"/api/v1/workloads/{workload_id}/logs")
    assert response.status_code == 200, response.text
    return response.text


def server_pid(server: ServerProcess) -> int:
    assert server.process is not None
    return server.process.pid


def test_a_job_reaches_nothing_of_the_platform_nor_of_other_workspaces(
    server: ServerProcess, teams: dict[str, User]
) -> None:
    admin, alice = teams["admin"], teams["alice"]
    other = admin.submit("ml-b", ["/bin/sh", "-c", "echo ml-b-secret > secret.txt"], **JOB)
    admin.wait_status(other, "SUCCEEDED")
    other_file = server.data_dir / "workdirs" / other / "secret.txt"
    assert other_file.read_text() == "ml-b-secret\n"  # it is there, on the host
    database = server.data_dir / "astrago.db"
    assert database.exists()

    probe = [job_python(), "-c", PROBE, str(server_pid(server)), str(database), str(other_file)]
    job = alice.submit("ml-a", probe, **JOB)
    assert alice.wait_status(job, "SUCCEEDED", "FAILED")["status"] == "SUCCEEDED", logs_of(alice, job)
    seen: dict[str, Any] = json.loads(logs_of(alice, job))

    # The server is not in the job's PID namespace: no environ (where the admin password was), no cmdline.
    assert seen["server_environ"] == {"error": "FileNotFoundError"}
    assert seen["server_cmdline"] == {"error": "FileNotFoundError"}
    # The data dir is an empty tmpfs there: no database, and no other workspace's files.
    assert seen["database"] == {"error": "FileNotFoundError"}
    assert seen["database_dir"] == {"read": ["workdirs"]}  # only the path down to its own working dir
    assert seen["other_workspace_file"] == {"error": "FileNotFoundError"}
    # It sees its own processes only: the sandbox's init and itself.
    assert len(seen["pids"]) == 2
    [init] = seen["cmdlines"]
    assert init[-1].endswith("sandbox_init.py")
    # No secret in its environment: nothing of the server's settings, only the allow-list and its own.
    env: dict[str, str] = seen["env"]
    assert ADMIN_PASSWORD not in json.dumps(env)
    assert not {"ASTRAGO_ADMIN_PASSWORD", "ASTRAGO_DATA_DIR", "ASTRAGO_SANDBOX_SHARED_PATHS"} & set(env)
    assert env["ASTRAGO_WORKSPACE"] == "ml-a"
    if os.geteuid() == 0:  # a root server runs jobs as their workspace's unprivileged uid
        assert seen["uid"] >= 1_900_000_000
    # The server dropped the admin password from its own environment once read.
    assert ADMIN_PASSWORD.encode() not in Path(f"/proc/{server_pid(server)}/environ").read_bytes()

    system = alice.api("GET", "/api/v1/system").json()
    assert system["isolation"]["mode"] == "sandboxed"
    assert "bubblewrap" in system["isolation"]["detail"]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_platform_files_are_private_whatever_the_umask(tmp_path: Path) -> None:
    server = ServerProcess(data_dir=tmp_path / "data", umask=0o000)
    server.start()
    try:
        admin = User(server, "admin", tmp_path / "admin-home")
        admin.login(ADMIN_PASSWORD)
        job = admin.submit("default", ["/bin/sh", "-c", "echo hello; touch made-by-job"], **JOB)
        admin.wait_status(job, "SUCCEEDED")
        data = server.data_dir
        assert mode(data) == 0o700
        database = data / "astrago.db"
        for path in (database, database.with_name("astrago.db-wal"), database.with_name("astrago.db-shm")):
            assert mode(path) == 0o600, path
        assert mode(data / "logs" / job / "0.log") == 0o600
        own_files = data / "workdirs" / job
        checked = 0
        for path in data.rglob("*"):
            if (path.is_relative_to(own_files) and path != own_files) or path.name.startswith("server-"):
                continue  # the job's own files; the test harness's copy of the server's output
            assert mode(path) == (0o700 if path.is_dir() else 0o600), path
            checked += 1
        assert checked > 8
        assert mode(own_files / "made-by-job") == 0o644  # a job's own files: the customary umask 022
    finally:
        server.stop()


def test_without_a_sandbox_only_admins_run_workloads(
    tmp_path: Path, make_single_user_server: Callable[[], ServerProcess]
) -> None:
    server = make_single_user_server()
    admin = User(server, "admin", tmp_path / "admin-home")
    admin.login(ADMIN_PASSWORD)
    body = {"username": "bob", "password": "password-123"}
    assert admin.api("POST", "/api/v1/users", json=body).status_code == 201
    member = {"username": "bob", "role": "member"}
    assert admin.api("PUT", "/api/v1/workspaces/default/members", json=member).status_code == 200
    bob = User(server, "bob", tmp_path / "bob-home")
    bob.login("password-123")

    refused = bob.api("POST", "/api/v1/workloads", json={"workspace": "default", "command": ["true"], **JOB})
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    detail = refused.json()["detail"]
    assert "single-user mode" in detail
    assert "only admins may run workloads" in detail
    assert "apt-get install bubblewrap" in detail  # how to enable the sandbox
    printed = bob.cli("run", "-w", "default", "--", "true", check=False)
    assert printed.returncode != 0
    assert "single-user mode" in printed.stderr
    assert "Traceback" not in printed.stderr

    job = admin.submit("default", ["true"], **JOB)  # the admin still may
    # without a sandbox a volume can only be a link in the working directory: no bind mounts
    assert admin.api("POST", "/api/v1/workspaces/default/volumes", json={"name": "ds"}).status_code == 201
    for mount in ("ds:/data", "ds:data:ro"):
        body = {"workspace": "default", "command": ["true"], "volumes": [mount], **JOB}
        bound = admin.api("POST", "/api/v1/workloads", json=body)
        assert bound.status_code == 422, bound.text
        assert "without a sandbox (single-user mode)" in bound.json()["detail"]
        assert "$ASTRAGO_VOLUME_DS" in bound.json()["detail"]
    admin.wait_status(job, "SUCCEEDED")
    system = bob.api("GET", "/api/v1/system").json()["isolation"]
    assert system["mode"] == "single-user"
    assert "is not installed" in system["detail"]
    assert "single-user mode" in server.logs()  # the start banner says so


@pytest.fixture
def make_single_user_server(tmp_path: Path) -> Any:
    started: list[ServerProcess] = []

    def make() -> ServerProcess:
        missing = tmp_path / "no-such-bwrap"
        server = ServerProcess(data_dir=tmp_path / "data", extra_env={"ASTRAGO_SANDBOX_BWRAP": str(missing)})
        server.start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()
