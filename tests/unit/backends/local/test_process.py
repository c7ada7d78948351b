"""Real processes (sleep, python): identities, discovery by environment marker, exits and signals."""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from collections.abc import Iterator

import pytest

from astrago.backends.local.process import (
    ProcessHandle,
    describe_signal,
    find_session_leader_with_env,
    is_same_process_alive,
    read_identity,
)


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(["sleep", "30"], start_new_session=True)
    yield process
    process.kill()
    process.wait()


def test_identity_of_a_live_process(sleeper: subprocess.Popen[bytes]) -> None:
    identity = read_identity(sleeper.pid)
    assert identity is not None
    assert identity.pid == sleeper.pid
    assert identity.start_ticks > 0
    assert is_same_process_alive(identity)


def test_a_zombie_has_exited_but_keeps_its_identity(sleeper: subprocess.Popen[bytes]) -> None:
    identity = read_identity(sleeper.pid)
    os.kill(sleeper.pid, signal.SIGKILL)
    os.waitid(os.P_PID, sleeper.pid, os.WEXITED | os.WNOWAIT)  # ended, not yet reaped

    assert read_identity(sleeper.pid) is None
    assert read_identity(sleeper.pid, include_exited=True) == identity
    assert identity is not None
    assert not is_same_process_alive(identity)


def test_a_process_with_the_same_pid_but_another_start_is_not_the_same(
    sleeper: subprocess.Popen[bytes],
) -> None:
    identity = read_identity(sleeper.pid)
    assert identity is not None
    recycled = type(identity)(
        pid=identity.pid, start_ticks=identity.start_ticks - 1, boot_id=identity.boot_id
    )
    assert not is_same_process_alive(recycled)


def test_a_session_leader_is_found_by_its_environment_marker() -> None:
    token = uuid.uuid4().hex
    env = {**os.environ, "TEST_MARKER": token}
    # The shell leads its session and starts a child carrying the same marker: only the leader is found.
    leader = subprocess.Popen(["sh", "-c", "sleep 30 & wait"], env=env, start_new_session=True)
    try:
        found = find_session_leader_with_env("TEST_MARKER", token)
        assert found is not None
        assert found.pid == leader.pid
        assert find_session_leader_with_env("TEST_MARKER", uuid.uuid4().hex) is None
    finally:
        os.killpg(leader.pid, signal.SIGKILL)
        leader.wait()


async def test_a_child_is_awaited_and_reaped_with_its_exit_status() -> None:
    child = subprocess.Popen(["sh", "-c", "exit 5"])  # noqa: ASYNC220 - the handle under test takes a Popen
    identity = read_identity(child.pid, include_exited=True)
    assert identity is not None
    handle = ProcessHandle(identity, child)
    assert await handle.wait_exit() == 5
    assert child.returncode == 5
    handle.close()


async def test_an_adopted_process_is_awaited_and_signalled(sleeper: subprocess.Popen[bytes]) -> None:
    """Without the Popen (as after a restart) the exit comes from the pidfd and the status is unknown."""
    identity = read_identity(sleeper.pid)
    assert identity is not None
    handle = ProcessHandle(identity)
    assert handle.send_signal(signal.SIGTERM)
    assert await handle.wait_exit() is None
    assert sleeper.wait() == -signal.SIGTERM
    assert not handle.send_signal(signal.SIGTERM)  # reaped: nothing to signal any more
    handle.close()


def test_signals_are_described_by_number_and_name() -> None:
    assert describe_signal(9) == "9 (SIGKILL)"
    assert describe_signal(15) == "15 (SIGTERM)"
    assert describe_signal(200) == "200"
