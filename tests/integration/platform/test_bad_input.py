"""Bad input gets a 4xx problem+json a user understands, the CLI prints it without a traceback, and
nothing is stored."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.server import ADMIN_PASSWORD, ServerProcess, User

BAD_SUBMISSIONS: list[tuple[dict[str, Any], int, str]] = [
    ({"workspace": "nope", "command": ["true"]}, 404, "workspace 'nope' does not exist"),
    ({"workspace": "ml-a", "command": ["true"], "resources": {"cpu": -1}}, 422, "negative"),
    ({"workspace": "ml-a", "command": ["true"], "resources": {"memory": "-5Gi"}}, 422, "memory"),
    ({"workspace": "ml-a", "command": ["true"], "resources": {"gpus": -1}}, 422, "resources.gpus"),
    ({"workspace": "ml-a", "command": ["true"], "resources": {"cpu": 100000}}, 422, "cpu must be between"),
    ({"workspace": "ml-a", "command": ["true"], "resources": {"memory": "3Pi"}}, 422, "unknown memory unit"),
    ({"workspace": "ml-a", "command": ["true"], "resources": {"gpus": 1000}}, 422, "resources.gpus"),
    ({"workspace": "ml-a", "command": ["true"], "resources": {"gpus": 8}}, 422, "no node could ever"),
    ({"workspace": "ml-a", "command": ["true"], "resources": {"gpus": 1, "gpu_model": "H100"}}, 422, "H100"),
    ({"workspace": "ml-a", "command": ["true"], "replicas": 0}, 422, "replicas"),
    ({"workspace": "ml-a", "command": ["true"], "priority": "vip"}, 422, "unknown priority class"),
    ({"workspace": "ml-a", "command": ["true"], "max_runtime": "soon"}, 422, "cannot read duration"),
    ({"workspace": "ml-a", "command": []}, 422, "give a command"),
    (
        {"workspace": "ml-a", "command": ["true"], "gpus": 1},
        422,
        "gpus is not a field (it belongs under resources)",
    ),
    (
        {"workspace": "ml-a", "comand": ["true"]},
        422,
        "comand is not a field (did you mean 'command'?); the fields",
    ),
    (
        {"workspace": "ml-a", "command": ["x"], "name": "Bad_Name"},
        422,
        "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$",
    ),
    ({"workspace": "ml-a", "command": ["x"], "kind": "jobb"}, 422, "not 'jobb' (did you mean 'job'?)"),
    ({"workspace": "ml-a", "command": ["true"], "env": {"1BAD": "x"}}, 422, "not valid"),
]


@pytest.fixture(scope="module")
def refusing_admin(module_admin: User) -> User:
    assert module_admin.api("POST", "/api/v1/workspaces", json={"name": "ml-a"}).status_code == 201
    return module_admin


@pytest.mark.parametrize(("body", "status", "message"), BAD_SUBMISSIONS)
def test_bad_submissions_are_refused_clearly_and_store_nothing(
    refusing_admin: User, body: dict[str, Any], status: int, message: str
) -> None:
    response = refusing_admin.api("POST", "/api/v1/workloads", json=body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == status
    assert message in problem["detail"], problem["detail"]
    listed = refusing_admin.api("GET", "/api/v1/workloads").json()
    assert listed["total"] == 0


@pytest.fixture
def admin_with_workspace(admin: User) -> User:
    assert admin.api("POST", "/api/v1/workspaces", json={"name": "ml-a"}).status_code == 201
    return admin


def test_quota_ceiling_refuses_what_could_never_run(admin_with_workspace: User) -> None:
    admin = admin_with_workspace
    admin.cli("quota", "set", "ml-a", "--gpu-limit", "2")
    refused = admin.cli("run", "-w", "ml-a", "--gpus", "1", "--replicas", "3", "--", "true", check=False)
    assert refused.returncode == 1
    assert "GPU limit of 2 GPUs" in refused.stderr
    assert "Traceback" not in refused.stderr
    bad_quota = admin.cli("quota", "set", "ml-a", "--gpu-guaranteed", "3", check=False)
    assert "below its guaranteed" in bad_quota.stderr


def test_cli_reports_malformed_yaml_and_unknown_server(admin_with_workspace: User, tmp_path: Path) -> None:
    spec = tmp_path / "job.yaml"
    spec.write_text("workspace: ml-a\ncommand: [python, train.py\nresources: {gpus: 1}\n")
    result = admin_with_workspace.cli("run", "-f", str(spec), check=False)
    assert result.returncode == 2
    assert f"{spec} is not valid YAML at line" in result.stderr
    assert "Traceback" not in result.stderr
    missing = admin_with_workspace.cli("run", "-f", str(tmp_path / "nope.yaml"), check=False)
    assert missing.returncode == 2
    assert "cannot read" in missing.stderr
    assert admin_with_workspace.api("GET", "/api/v1/workloads").json()["total"] == 0

    unreachable = User(
        ServerProcess(data_dir=tmp_path / "none"), "admin", admin_with_workspace.config_dir, token="ast_x"
    )
    result = unreachable.cli("ps", check=False)
    assert result.returncode == 1
    assert "cannot reach the AstraGo server" in result.stderr
    assert "Traceback" not in result.stderr


def test_yaml_spec_file_with_flag_overrides(admin_with_workspace: User, tmp_path: Path) -> None:
    spec = tmp_path / "job.yaml"
    spec.write_text(
        "workspace: ml-a\nname: from-file\ncommand: [sh, -c, 'echo $GREETING']\n"
        "env: {GREETING: hello}\nresources: {cpu: 500m, memory: 256Mi}\nmax_runtime: 10m\n"
    )
    workload_id = admin_with_workspace.cli("run", "-f", str(spec), "--memory", "128Mi").stdout.strip()
    workload = admin_with_workspace.wait_status(workload_id, "SUCCEEDED")
    assert workload["name"] == "from-file"
    assert workload["spec"]["resources"]["memory_mib"] == 128
    assert workload["spec"]["resources"]["cpu_milli"] == 500
    assert workload["spec"]["max_runtime_s"] == 600
    assert admin_with_workspace.cli("logs", workload_id).stdout.strip() == "hello"


def test_expired_login_token_is_refused(tmp_path: Path) -> None:
    server = ServerProcess(data_dir=tmp_path / "data", extra_env={"ASTRAGO_TOKEN_TTL_S": "1"})
    server.start()
    try:
        login = User(server, "admin", tmp_path / "home").api(
            "POST", "/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}
        )
        user = User(server, "admin", tmp_path / "home", token=login.json()["token"])
        assert user.api("GET", "/api/v1/auth/me").status_code == 200
        time.sleep(1.5)
        expired = user.api("GET", "/api/v1/auth/me")
        assert expired.status_code == 401
        assert "expired" in expired.json()["detail"]
        wrong = User(server, "admin", tmp_path / "home").api(
            "POST", "/api/v1/auth/login", json={"username": "admin", "password": "wrong"}
        )
        assert wrong.status_code == 401
        assert wrong.json()["detail"] == "wrong username or password"
    finally:
        server.stop()


def test_cli_errors_keep_patterns_whole_and_suggest_what_was_meant(
    refusing_admin: User, tmp_path: Path
) -> None:
    admin = refusing_admin
    bad_name = admin.cli("run", "-w", "ml-a", "--no-code", "--name", "Bad_Name", "--", "true", check=False)
    assert "name must match the pattern ^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$ (lowercase" in bad_name.stderr
    assert "not 'Bad_Name'" in bad_name.stderr

    typo = admin.cli("run", "-w", "ml-b", "--no-code", "--", "true", check=False)
    assert "workspace 'ml-b' does not exist (did you mean 'ml-a'?)" in typo.stderr

    spec = tmp_path / "job.yaml"
    spec.write_text(
        "workspace: ml-a\ncomand: [python, train.py]\nresources: {gpus: 1, gpu_modle: A100-80GB}\n"
    )
    keys = admin.cli("run", "--no-code", "-f", str(spec), check=False)
    assert "comand is not a field (did you mean 'command'?)" in keys.stderr
    assert "gpu_modle is not a field in resources (did you mean 'gpu_model'?)" in keys.stderr

    state = admin.cli("ps", "--state", "runing", check=False)
    assert state.returncode == 2
    assert "--state 'runing' is not a state (did you mean 'RUNNING'?)" in state.stderr

    model = admin.cli("run", "-w", "ml-a", "--no-code", "--gpu-model", "A100-40GB", "--", "true", check=False)
    assert (
        "no GPU of model 'A100-40GB' here (did you mean 'A100-80GB'?); the models that exist: A100-80GB"
        in (model.stderr)
    )
    assert admin.api("GET", "/api/v1/workloads").json()["total"] == 0
