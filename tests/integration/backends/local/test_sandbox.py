"""The local backend's sandbox with real processes: exec into a running replica, strays that leave the
process group, and single-user mode where no sandbox can be made."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import psutil

from astrago.backends.local import LocalBackend
from astrago.config import Settings
from astrago.domain.enums import ReplicaState
from astrago.domain.isolation import IsolationMode
from tests.integration.backends.local.support import (
    GUARD_S,
    Outcomes,
    release,
    wait_for_file_then,
    wait_for_output,
    wait_until_gone,
)
from tests.unit.backends.local.factories import launch_spec, python_command, replica, workdir

LIST_PROCESSES = (
    "import json, os\n"
    "pids = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())\n"
    "print(json.dumps({'uid': os.getuid(), 'pids': pids, 'cwd': os.getcwd()}), flush=True)\n"
)


async def test_exec_runs_a_second_process_inside_the_replicas_sandbox(
    backend: LocalBackend, outcomes: Outcomes, settings: Settings
) -> None:
    gate = workdir(settings) / "go"
    await backend.start(launch_spec(*python_command(LIST_PROCESSES + wait_for_file_then(gate, ""))))
    job = json.loads((await wait_for_output(backend, "wl-1", "ready")).splitlines()[0])

    entered = backend.enter_command("wl-1", 0, python_command(LIST_PROCESSES))
    done = await asyncio.to_thread(
        subprocess.run, entered.argv, env=entered.env, capture_output=True, text=True, timeout=GUARD_S
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)

    assert seen["uid"] == job["uid"]  # the workload's uid, not the server's
    assert seen["cwd"] == job["cwd"] == str(workdir(settings))
    assert set(job["pids"]) <= set(seen["pids"])  # the same PID namespace: it sees the job...
    assert len(seen["pids"]) <= len(job["pids"]) + 2  # ...and nothing of the host (nsenter's setpriv, itself)
    release(gate)
    assert (await outcomes.final("wl-1")).state is ReplicaState.SUCCEEDED


async def test_processes_that_leave_the_group_die_with_the_sandbox(
    backend: LocalBackend, outcomes: Outcomes
) -> None:
    marker = "314.15"  # `sleep 314.15`: found again on the host by its arguments
    await backend.start(launch_spec("/bin/sh", "-c", f"setsid sleep {marker} & sleep 0.2; exit 0"))
    assert (await outcomes.final("wl-1")).state is ReplicaState.SUCCEEDED
    strays = [p.pid for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] == ["sleep", marker]]
    for pid in strays:
        wait_until_gone(pid)  # the kernel ends the PID namespace with its init


async def test_without_bubblewrap_the_backend_runs_unsandboxed_in_single_user_mode(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "data", simulate_gpus="1xA100-80GB", sandbox_bwrap="no-such-bwrap"
    )
    backend = LocalBackend(settings)
    await backend.open()
    try:
        assert backend.isolation is not None
        assert backend.isolation.mode is IsolationMode.SINGLE_USER
        assert backend.isolation.detail == "bubblewrap ('no-such-bwrap') is not installed"
        assert backend.isolation.how_to_enable is not None
        outcomes = Outcomes(backend)
        await backend.start(launch_spec(*python_command(LIST_PROCESSES)))
        assert (await outcomes.final("wl-1")).state is ReplicaState.SUCCEEDED
        output = b"".join([chunk async for chunk in backend.logs("wl-1", 0, follow=False)])
        assert len(json.loads(output)["pids"]) > 5  # a plain process: it sees the host's processes
    finally:
        await backend.close()


async def test_the_replicas_of_one_workload_share_dev_shm_until_the_last_ends(
    backend: LocalBackend, outcomes: Outcomes, settings: Settings
) -> None:
    """NCCL's shared-memory transport needs one /dev/shm for all replicas on a machine."""
    show_shm = python_command("import os; s = os.stat('/dev/shm'); print(s.st_dev, s.st_ino)")
    await backend.start(launch_spec(*show_shm, replicas=(replica(0), replica(1))))
    await backend.start(launch_spec(*show_shm, workload_id="single"))
    for workload_id, index in (("wl-1", 0), ("wl-1", 1), ("single", 0)):
        assert (await outcomes.final(workload_id, index)).state is ReplicaState.SUCCEEDED

    async def shm_of(workload_id: str, index: int) -> bytes:
        return b"".join([c async for c in backend.logs(workload_id, index, follow=False)])

    assert await shm_of("wl-1", 0) == await shm_of("wl-1", 1)
    assert await shm_of("single", 0) != await shm_of("wl-1", 0)  # a private one
    assert not await asyncio.to_thread(backend.shared_shm_path("wl-1").exists)  # freed with the last replica
