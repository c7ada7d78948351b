"""`astrago exec`, driven through a real terminal (pexpect): a shell in the workload's environment, a
window resize, Ctrl-C, exit codes; a session ends with its workload; others' workloads stay hidden; how a
browser's WebSocket authenticates."""

from __future__ import annotations

import base64
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pexpect
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Subprotocol

from astrago.api.proxy_auth import BEARER_SUBPROTOCOL_PREFIX, TERMINAL_SUBPROTOCOL
from tests.integration.platform.conftest import User
from tests.support.server import ASTRAGO

PROMPT = "ready> "
SET_PROMPT = "export PS1='ready''> '"  # its echo does not contain the prompt itself
BASH_PROMPT = r"bash-[\d.]+[#$] "


def spawn_exec(user: User, *args: str) -> pexpect.spawn:
    env = {**os.environ, "XDG_CONFIG_HOME": str(user.config_dir), "ASTRAGO_URL": user.server.url}
    # As many shells export them: a resize must still reach the workload (the size is the terminal's)
    env |= {"COLUMNS": "80", "LINES": "24"}
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
        # The new size travels as a signal to the CLI, then a message to the server; keys typed at once
        # may overtake it (as over ssh), so ask until the shell sees it.
        for _ in range(20):
            shell.sendline("stty size")
            seen = shell.expect([r"40 132\r\n", r"\d+ \d+\r\n"])
            shell.expect_exact(PROMPT)
            if seen == 0:
                break
        else:
            raise AssertionError("the shell never saw the new size")
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
    made = admin.api("POST", "/api/v1/auth/tokens", json={"name": "reader", "read_only": True})
    reader = User(admin.server, "admin", tmp_path / "reader", token=made.json()["token"])
    read_only = reader.cli("exec", workload_id, "--", "id", check=False)  # a GET handshake, but it runs code
    assert read_only.returncode == 1
    assert "read-only" in read_only.stderr
    finished = admin.submit("shell", ["true"])
    admin.wait_status(finished, "SUCCEEDED")
    ended = admin.cli("exec", finished, "--", "id", check=False)
    assert "commands run only while it runs" in ended.stderr


def _browser_socket(admin: User, workload_id: str, **options: Any) -> ClientConnection:
    query = urlencode([("command", "sh"), ("command", "-c"), ("command", "echo from-$0"), ("tty", "false")])
    url = admin.server.url.replace("http", "ws", 1) + f"/api/v1/workloads/{workload_id}/exec?{query}"
    return connect(url, open_timeout=30, **options)


def _exit_code(socket: ClientConnection) -> tuple[bytes, int]:
    output, code = b"", -1
    for frame in socket:
        if isinstance(frame, bytes):
            output += frame[1:]
        else:
            code = json.loads(frame)["code"]
    return output, code


def test_a_browser_authenticates_with_a_subprotocol_or_its_same_origin_session_cookie(
    admin: User, shared_workload: str
) -> None:
    """What the console's Terminal tab does: a browser cannot set headers on a WebSocket, so the token
    rides in a subprotocol (never in the URL); a session cookie is honoured only from the same origin."""
    assert admin.token
    encoded = base64.urlsafe_b64encode(admin.token.encode()).decode().rstrip("=")
    protocols = [Subprotocol(TERMINAL_SUBPROTOCOL), Subprotocol(f"{BEARER_SUBPROTOCOL_PREFIX}{encoded}")]
    with _browser_socket(admin, shared_workload, subprotocols=protocols) as socket:
        assert socket.subprotocol == TERMINAL_SUBPROTOCOL  # never the one holding the token
        assert _exit_code(socket) == (b"from-sh\n", 0)

    cookie = {"Cookie": f"astrago_session={admin.token}"}
    host = admin.server.url.split("://", 1)[1]
    same_origin = {**cookie, "Origin": f"http://{host}"}
    with _browser_socket(admin, shared_workload, additional_headers=same_origin) as socket:
        assert _exit_code(socket) == (b"from-sh\n", 0)
    for refused_headers, status in [
        ({**cookie, "Origin": "https://evil.example"}, 403),  # another site's page, riding the cookie
        (cookie, 403),  # no Origin at all: not what a browser sends
        ({}, 401),
    ]:
        with pytest.raises(InvalidStatus) as refused:
            _browser_socket(admin, shared_workload, additional_headers=refused_headers)
        assert refused.value.response.status_code == status
    bad = [Subprotocol(TERMINAL_SUBPROTOCOL), Subprotocol(f"{BEARER_SUBPROTOCOL_PREFIX}not*base64")]
    with pytest.raises(InvalidStatus) as unreadable:
        _browser_socket(admin, shared_workload, subprotocols=bad)
    assert unreadable.value.response.status_code == 401
