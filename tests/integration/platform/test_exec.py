"""`astrago exec`, driven through a real terminal (pexpect): a shell in the workload's environment, a
window resize, Ctrl-C, exit codes; a session ends with its workload; others' workloads stay hidden."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

from tests.integration.platform.conftest import User
from tests.support.server import ASTRAGO

PROMPT = "ready> "
SET_PROMPT = "export PS1='ready''> '"  # its echo does not contain the prompt itself
BASH_PROMPT = r"bash-[\d.]+[#$] "


def spawn_exec(user: User, *args: str) -> pexpect.spawn:
    env = {**os.environ, "XDG_CONFIG_HOME": str(user.config_dir), "ASTRAGO_URL": user.server.url}
    if user.token:
        env["ASTRAGO_TOKEN"] = user.token
    return pexpect.spawn(
        ASTRAGO[0], [*ASTRAGO[1:], "exec", *args], env=env, dimensions=(24, 80), timeout=30, encoding="utf-8"
    )


@pytest.fixture(scope="module")
def admin(module_admin: User) -> User:
    module_admin.cli("workspace", "create", "shell")
    return module_admin


def running_workload(admin: User) -> str:
    workload_id = admin.submit("shell", ["sleep", "300"], env={"FOO": "bar"}, resources={"gpus": 1})
    admin.wait_status(workload_id, "RUNNING")
    return workload_id


@pytest.fixture(scope="module")
def shared_workload(admin: User) -> Iterator[str]:
    workload_id = running_workload(admin)
    yield workload_id
    admin.cli("cancel", workload_id)


def test_a_terminal_in_the_workload_resizes_interrupts_and_exits_with_its_code(
    admin: User, shared_workload: str
) -> None:
    workload_id = shared_workload
    shell = spawn_exec(admin, "-it", workload_id, "--", "bash", "--norc", "--noprofile")
    try:
        shell.expect(BASH_PROMPT)  # typed before the shell reads, keys would be flushed
        shell.sendline(SET_PROMPT)
        shell.expect_exact(PROMPT)
        shell.sendline('echo "gpu=$CUDA_VISIBLE_DEVICES foo=$FOO cwd=$PWD"')
        shell.expect(rf"gpu=0 foo=bar cwd=\S+/workdirs/{workload_id}\r\n")
        shell.setwinsize(40, 132)
        shell.sendline("stty size")
        shell.expect_exact("40 132")
        shell.expect_exact(PROMPT)
        # The quotes keep the words out of the terminal's echo of the line: only the output matches.
        shell.sendline("echo sleep''ing; sleep 100; echo sl''ept")
        shell.expect_exact("sleeping\r\n")  # the sleep is the terminal's foreground job now
        shell.sendintr()
        shell.expect_exact(PROMPT)
        assert "slept" not in (shell.before or "")  # interrupted, well before its 100 s
        shell.sendline('echo "interrupted=$?"')
        shell.expect_exact("interrupted=130")  # 128 + SIGINT
        shell.expect_exact(PROMPT)
        shell.sendline("exit 3")
        shell.expect(pexpect.EOF)
    finally:
        shell.close()
    assert shell.exitstatus == 3


def test_a_command_without_a_terminal_keeps_stdout_stderr_and_exit_code(
    admin: User, shared_workload: str
) -> None:
    workload_id = shared_workload
    result = admin.cli("exec", workload_id, "--", "sh", "-c", "echo out; echo err >&2; exit 4", check=False)
    assert (result.returncode, result.stdout, result.stderr) == (4, "out\n", "err\n")
    piped = admin.cli(
        "exec", "-i", workload_id, "--", sys.executable, "-c", "print(input()[::-1])", stdin="abc\n"
    )
    assert piped.stdout == "cba\n"


def test_the_session_ends_when_the_workload_ends(admin: User) -> None:
    workload_id = running_workload(admin)
    shell = spawn_exec(admin, "-it", workload_id, "--", "bash", "--norc", "--noprofile")
    try:
        shell.expect(BASH_PROMPT)  # typed before the shell reads, keys would be flushed
        shell.sendline(SET_PROMPT)
        shell.expect_exact(PROMPT)
        admin.cli("cancel", workload_id)
        shell.expect(pexpect.EOF)
    finally:
        shell.close()
    assert shell.exitstatus == 137  # killed with its workload


def test_others_cannot_run_commands_in_a_workload(admin: User, shared_workload: str, tmp_path: Path) -> None:
    workload_id = shared_workload
    created = admin.api("POST", "/api/v1/users", json={"username": "outsider", "password": "password-123"})
    assert created.status_code == 201, created.text
    login = admin.api("POST", "/api/v1/auth/login", json={"username": "outsider", "password": "password-123"})
    outsider = User(admin.server, "outsider", tmp_path / "outsider", token=login.json()["token"])
    refused = outsider.cli("exec", workload_id, "--", "id", check=False)
    assert refused.returncode == 1
    assert "does not exist or is not in one of your workspaces" in refused.stderr
    finished = admin.submit("shell", ["true"])
    admin.wait_status(finished, "SUCCEEDED")
    ended = admin.cli("exec", finished, "--", "id", check=False)
    assert "commands run only while it runs" in ended.stderr
