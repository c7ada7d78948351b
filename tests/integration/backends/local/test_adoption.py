"""Crash and restart: a real server process is killed with SIGKILL while its replicas run, and a new
backend on the same data dir must re-adopt them, report what happened while it was down, and never start
anything twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from astrago.backends.local import LocalBackend
from astrago.backends.local.backend import spawn_runner
from astrago.backends.local.plan import replica_env
from astrago.backends.local.records import RecordStore, ReplicaRecord
from astrago.backends.local.runner import StopRequest, read_json
from astrago.config import Settings
from astrago.domain.enums import ReplicaState
from tests.integration.backends.local.conftest import stop_everything
from tests.integration.backends.local.support import (
    GUARD_S,
    Outcomes,
    release,
    state_of,
    wait_for_file_then,
    wait_for_output,
    wait_until_gone,
)
from tests.unit.backends.local.factories import NODE, launch_spec, python_command, workdir
from tests.unit.backends.local.test_records import intent

REPO_ROOT = Path(__file__).resolve().parents[4]


@pytest.fixture
async def restarted(settings: Settings) -> AsyncIterator[LocalBackend]:
    """The backend of the server after its restart (each test opens it once the crash is staged)."""
    backend = LocalBackend(settings)
    yield backend
    try:
        await stop_everything(backend)
    finally:
        await backend.close()


def crash_after_start(settings: Settings, command: tuple[str, ...], workload_id: str = "wl-1") -> None:
    """Run a server that starts `command`, then kill -9 it; its replicas keep running in their sessions."""
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.integration.backends.local.crashing_server",
            str(settings.data_dir),
            workload_id,
            json.dumps(command),
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        assert server.stdout.readline() == "started\n"
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait()


def record_of(settings: Settings, workload_id: str = "wl-1") -> ReplicaRecord:
    [record] = RecordStore(settings.runs_dir).load_all()
    assert isinstance(record, ReplicaRecord)
    return record


def command_pid(settings: Settings) -> int:
    """The command's pid, which its runner records right after starting it."""
    status_path = RecordStore(settings.runs_dir).status_path("wl-1", 0)
    deadline = time.monotonic() + GUARD_S
    while (status := read_json(status_path)) is None or status.get("child_pid") is None:
        assert time.monotonic() < deadline, "the runner never recorded its command's pid"
        time.sleep(0.01)
    return int(status["child_pid"])


async def test_a_running_replica_is_readopted_and_reports_its_exit_code(
    settings: Settings, restarted: LocalBackend
) -> None:
    gate, starts = workdir(settings) / "go", workdir(settings) / "starts"
    code = f"open({str(starts)!r}, 'a').write('started\\n')\n" + wait_for_file_then(
        gate, "raise SystemExit(7)"
    )
    crash_after_start(settings, python_command(code))
    started_at = record_of(settings).started_at

    await restarted.open()
    outcomes = Outcomes(restarted)
    running = await state_of(restarted, "wl-1")
    assert (running.state, running.started_at, running.node) == (ReplicaState.RUNNING, started_at, NODE)
    await restarted.start(launch_spec(*python_command(code)))  # the controller re-issuing the start: no-op
    await wait_for_output(restarted, "wl-1", "ready")

    release(gate)
    final = await outcomes.final("wl-1")
    assert (final.state, final.exit_code, final.reason) == (ReplicaState.FAILED, 7, "exited with code 7")
    assert starts.read_text() == "started\n"  # never started twice


async def test_an_exit_while_the_server_was_down_is_reported(
    settings: Settings, restarted: LocalBackend
) -> None:
    gate = workdir(settings) / "go"
    crash_after_start(settings, python_command(wait_for_file_then(gate, "raise SystemExit(4)")))
    runner = record_of(settings).runner
    assert runner is not None
    release(gate)
    wait_until_gone(runner.pid)

    await restarted.open()
    final = await state_of(restarted, "wl-1")
    assert (final.state, final.exit_code, final.reason) == (ReplicaState.FAILED, 4, "exited with code 4")


async def test_an_adopted_replica_can_be_stopped(settings: Settings, restarted: LocalBackend) -> None:
    crash_after_start(settings, ("sleep", "60"))
    await restarted.open()
    outcomes = Outcomes(restarted)

    await restarted.stop("wl-1", grace_s=5, reason="cancelled by alice")

    final = await outcomes.final("wl-1")
    assert (final.state, final.reason) == (ReplicaState.STOPPED, "cancelled by alice")


async def test_a_stop_recorded_but_never_signalled_is_resumed(
    settings: Settings, restarted: LocalBackend
) -> None:
    """The server died between recording a stop and signalling the runner."""
    crash_after_start(settings, ("sleep", "60"))
    store, record = RecordStore(settings.runs_dir), record_of(settings)
    StopRequest(reason="preempted by ml-b", grace_s=5).save(store.stop_path(*record.key))
    store.save(record.with_stop("preempted by ml-b", 5))

    outcomes = Outcomes(restarted)
    await restarted.open()

    final = await outcomes.final("wl-1")
    assert (final.state, final.reason) == (ReplicaState.STOPPED, "preempted by ml-b")


async def test_a_process_that_vanished_while_the_server_was_down_is_lost(
    settings: Settings, restarted: LocalBackend, tmp_path: Path
) -> None:
    crash_after_start(settings, ("sleep", "60"))
    runner = record_of(settings).runner
    assert runner is not None
    child_pid = command_pid(settings)
    os.killpg(runner.pid, signal.SIGKILL)  # the runner's group, then the command's
    os.killpg(child_pid, signal.SIGKILL)
    wait_until_gone(runner.pid)
    wait_until_gone(child_pid)

    await restarted.open()
    lost = await state_of(restarted, "wl-1")
    assert lost.state is ReplicaState.LOST
    assert lost.reason == (
        f"process {runner.pid} vanished while the server was down; "
        f"its sandbox (pid {child_pid}) was killed with it"
    )

    await restarted.start(launch_spec("sleep", "60"))
    assert [o.state for o in await restarted.observe()] == [ReplicaState.LOST]  # not started again


async def test_a_command_whose_runner_vanished_is_killed_and_lost(
    settings: Settings, restarted: LocalBackend
) -> None:
    crash_after_start(settings, ("sleep", "60"))
    runner = record_of(settings).runner
    assert runner is not None
    child_pid = command_pid(settings)
    os.kill(runner.pid, signal.SIGKILL)  # only the runner: its sandbox dies with it (--die-with-parent)
    wait_until_gone(runner.pid)
    wait_until_gone(child_pid)  # even before any server looks

    await restarted.open()

    lost = await state_of(restarted, "wl-1")
    assert lost.state is ReplicaState.LOST
    assert lost.reason == (
        f"process {runner.pid} vanished while the server was down; "
        f"its sandbox (pid {child_pid}) was killed with it"
    )


async def test_an_intent_without_a_process_is_lost_and_never_started(
    settings: Settings, restarted: LocalBackend
) -> None:
    """The server died after recording its intent, before it spawned anything."""
    store = RecordStore(settings.runs_dir)
    store.save(
        intent().model_copy(update={"node": NODE, "log_path": str(settings.logs_dir / "wl-1" / "0.log")})
    )

    await restarted.open()
    await restarted.start(launch_spec("sleep", "60"))

    lost = await state_of(restarted, "wl-1")
    assert lost.state is ReplicaState.LOST
    assert lost.reason == (
        "the server stopped while launching this replica, and no process of it was found; "
        "it is not started again"
    )
    assert not (settings.logs_dir / "wl-1" / "0.log").exists()


async def test_a_runner_spawned_before_its_pid_was_recorded_is_found_and_adopted(
    settings: Settings, restarted: LocalBackend, tmp_path: Path
) -> None:
    """The server died after spawning the runner, before it recorded the runner's pid (spawned here without
    a sandbox, as in single-user mode)."""
    gate = tmp_path / "go"
    spec = launch_spec(*python_command(wait_for_file_then(gate, "raise SystemExit(5)")))
    store = RecordStore(settings.runs_dir)
    record = intent().model_copy(
        update={
            "node": NODE,
            "argv": spec.command,
            "working_dir": str(tmp_path),
            "log_path": str(settings.logs_dir / "wl-1" / "0.log"),
        }
    )
    store.save(record)
    env = replica_env(spec, spec.replicas[0], {"PATH": "/usr/bin:/bin"}, (), simulated=False, port=None)
    orphan = spawn_runner(record, env, store, grace_s=5)

    try:
        outcomes = Outcomes(restarted)
        await restarted.open()
        assert (await state_of(restarted, "wl-1")).state is ReplicaState.RUNNING
        assert record_of(settings).runner is not None  # the pid is now recorded
        await wait_for_output(restarted, "wl-1", "ready")
        release(gate)
        final = await outcomes.final("wl-1")
        assert (final.state, final.exit_code) == (ReplicaState.FAILED, 5)
    finally:
        orphan.kill()
        orphan.wait()
