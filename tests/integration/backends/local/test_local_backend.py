"""The local executor with real processes: environment, logs, exit codes, stop, max runtime, idempotence."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from astrago.backends.base import BackendError
from astrago.backends.local import LocalBackend
from astrago.backends.local.records import RecordStore
from astrago.backends.local.runner import read_json
from astrago.config import Settings
from astrago.domain.enums import ReplicaState
from tests.integration.backends.local.support import (
    Outcomes,
    processes_of,
    release,
    state_of,
    wait_for_file_then,
    wait_for_output,
    wait_until_gone,
)
from tests.unit.backends.local.factories import (
    NODE,
    launch_spec,
    local_settings,
    python_command,
    replica,
    shared_dir,
    workdir,
)
from tests.unit.backends.local.test_inventory import H100_CAPTURE

PRINT_ENV = python_command(
    "import json, os; keys = ['CUDA_VISIBLE_DEVICES', 'ASTRAGO_SIMULATED_GPUS', 'ASTRAGO_WORKLOAD_ID', "
    "'ASTRAGO_REPLICA_INDEX', 'ASTRAGO_REPLICAS', 'MASTER_ADDR', 'MASTER_PORT', 'WORLD_SIZE', 'RANK', 'LR'];"
    "print(json.dumps({**{k: os.environ.get(k) for k in keys}, 'cwd': os.getcwd()}))"
)
IGNORE_TERM_WITH_GRANDCHILD = python_command(
    "import signal, subprocess, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "grandchild = subprocess.Popen(['sleep', '60'])  # inherits the ignored SIGTERM\n"
    "print('grandchild', grandchild.pid, flush=True)\n"
    "print('ready', flush=True)\n"
    "time.sleep(60)\n"
)


async def env_of(backend: LocalBackend, workload_id: str, index: int) -> dict[str, str | None]:
    output = b"".join([chunk async for chunk in backend.logs(workload_id, index, follow=False)])
    env: dict[str, str | None] = json.loads(output)
    return env


async def test_each_replica_gets_its_gpus_and_distributed_env(
    backend: LocalBackend, outcomes: Outcomes, settings: Settings
) -> None:
    spec = launch_spec(*PRINT_ENV, replicas=(replica(0, gpus=(1, 2)), replica(1)), env={"LR": "0.1"})
    await backend.start(spec)
    for index in (0, 1):
        final = await outcomes.final("wl-1", index)
        assert (final.state, final.exit_code, final.reason) == (
            ReplicaState.SUCCEEDED,
            0,
            "exited with code 0",
        )

    first, second = await env_of(backend, "wl-1", 0), await env_of(backend, "wl-1", 1)
    assert first["CUDA_VISIBLE_DEVICES"] == "1,2"
    assert second["CUDA_VISIBLE_DEVICES"] == ""  # a CPU-only replica sees no GPU
    assert first["ASTRAGO_SIMULATED_GPUS"] == "1"
    assert second["ASTRAGO_SIMULATED_GPUS"] is None  # it has no GPU, simulated or not
    assert (first["RANK"], second["RANK"]) == ("0", "1")
    assert first["WORLD_SIZE"] == second["WORLD_SIZE"] == first["ASTRAGO_REPLICAS"] == "2"
    assert first["MASTER_ADDR"] == "127.0.0.1"
    assert first["MASTER_PORT"] == second["MASTER_PORT"]
    assert (first["ASTRAGO_WORKLOAD_ID"], second["ASTRAGO_REPLICA_INDEX"], first["LR"]) == (
        "wl-1",
        "1",
        "0.1",
    )
    assert first["cwd"] == str(settings.data_dir / "workdirs" / "wl-1")


async def test_real_gpus_are_given_by_uuid(tmp_path: Path, shared_data: Path) -> None:
    """GPUs listed from a recorded `nvidia-smi` capture of an H100 machine, as the GPU monitor replays it."""
    settings = local_settings(tmp_path / "data", simulate_gpus=None)
    backend = LocalBackend(settings, gpu_source=f"replay:{shared_data / H100_CAPTURE}")
    await backend.open()
    try:
        outcomes = Outcomes(backend)
        await backend.start(launch_spec(*PRINT_ENV, replicas=(replica(gpus=(0,)),)))
        assert (await outcomes.final("wl-1")).state is ReplicaState.SUCCEEDED
        env = await env_of(backend, "wl-1", 0)
        assert env["CUDA_VISIBLE_DEVICES"] == "GPU-00000000-0000-0000-0000-000000000000"
        assert env["ASTRAGO_SIMULATED_GPUS"] is None
    finally:
        await backend.close()


async def test_single_replica_jobs_get_no_distributed_env(backend: LocalBackend, outcomes: Outcomes) -> None:
    await backend.start(launch_spec(*PRINT_ENV))
    await outcomes.final("wl-1")
    env = await env_of(backend, "wl-1", 0)
    assert env["CUDA_VISIBLE_DEVICES"] == ""
    assert env["MASTER_PORT"] is None
    assert env["RANK"] is None


async def test_logs_interleave_stdout_and_stderr_and_follow_to_the_end(
    backend: LocalBackend, outcomes: Outcomes, settings: Settings
) -> None:
    gate = workdir(settings) / "go"
    code = (
        "import sys\nprint('out 1', flush=True)\nprint('err 1', file=sys.stderr, flush=True)\n"
        + wait_for_file_then(gate, "print('out 2', flush=True)\nprint('err 2', file=sys.stderr, flush=True)")
    )
    await backend.start(launch_spec(*python_command(code)))

    followed = b""
    async for chunk in backend.logs("wl-1", 0, follow=True):
        followed += chunk
        if b"ready" in followed and not gate.exists():
            release(gate)  # more output arrives only after the follower has read the first part
    # `follow` ends by itself when the replica ends, with everything it printed.
    assert followed.decode() == "out 1\nerr 1\nready\nout 2\nerr 2\n"
    assert (await outcomes.final("wl-1")).state is ReplicaState.SUCCEEDED
    again = b"".join([chunk async for chunk in backend.logs("wl-1", 0, follow=True)])
    assert again == followed


async def test_logs_of_an_unknown_replica_are_a_clear_error(backend: LocalBackend) -> None:
    with pytest.raises(BackendError, match="workload nope has no replica 0 with logs"):
        [chunk async for chunk in backend.logs("nope", 0, follow=False)]


@pytest.mark.parametrize(
    ("command", "exit_code", "reason"),
    [
        (python_command("raise SystemExit(3)"), 3, "exited with code 3"),
        (python_command("import os; os.kill(os.getpid(), 9)"), 137, "killed by signal 9 (SIGKILL)"),
        (("/no/run",), 127, "exited with code 127: cannot run '/no/run': No such file or directory"),
    ],
    ids=["exit-code", "signal", "not-found"],
)  # fmt: skip
async def test_failures_say_how_the_command_ended(
    backend: LocalBackend, outcomes: Outcomes, command: tuple[str, ...], exit_code: int, reason: str
) -> None:
    await backend.start(launch_spec(*command))
    final = await outcomes.final("wl-1")
    assert (final.state, final.exit_code, final.reason) == (ReplicaState.FAILED, exit_code, reason)
    assert final.started_at is not None
    assert final.finished_at is not None
    assert final.finished_at >= final.started_at


async def test_stop_terms_then_kills_the_whole_group(
    backend: LocalBackend, outcomes: Outcomes, settings: Settings
) -> None:
    await backend.start(launch_spec(*IGNORE_TERM_WITH_GRANDCHILD))
    await wait_for_output(backend, "wl-1", "ready")
    descendants = processes_of(settings)  # host pids: inside its sandbox the job sees other numbers

    await backend.stop("wl-1", grace_s=0.2, reason="cancelled by alice")
    await backend.stop("wl-1", grace_s=60, reason="cancelled twice")  # idempotent: the first stop stands

    final = await outcomes.final("wl-1")
    assert (final.state, final.reason, final.exit_code) == (ReplicaState.STOPPED, "cancelled by alice", 137)
    for pid in descendants:
        wait_until_gone(pid)
    log = b"".join([chunk async for chunk in backend.logs("wl-1", 0, follow=False)]).decode()
    assert "[astrago] stopping (cancelled by alice): SIGTERM to the group, SIGKILL in 0.2s" in log
    assert "[astrago] still running after the grace period: SIGKILL to process group" in log
    await backend.stop("wl-1", grace_s=1, reason="again")  # stopping a finished workload does nothing
    assert (await state_of(backend, "wl-1")).reason == "cancelled by alice"


async def test_a_command_that_exits_on_sigterm_does_not_wait_for_the_grace(
    backend: LocalBackend, outcomes: Outcomes, settings: Settings
) -> None:
    code = (
        "import signal, subprocess, sys, time\n"
        "grandchild = subprocess.Popen(['sh', '-c', 'trap \"\" TERM; sleep 60'])\n"
        "print('grandchild', grandchild.pid, flush=True)\n"
        "signal.signal(signal.SIGTERM, lambda *_: (print('bye', flush=True), sys.exit(0)))\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    await backend.start(launch_spec(*python_command(code)))
    await wait_for_output(backend, "wl-1", "ready")
    descendants = processes_of(settings)

    await backend.stop("wl-1", grace_s=600, reason="preempted by ml-b")
    final = await outcomes.final("wl-1")  # long before the 600 s grace

    assert (final.state, final.reason, final.exit_code) == (ReplicaState.STOPPED, "preempted by ml-b", 0)
    for pid in descendants:  # what the command left behind is killed with it
        wait_until_gone(pid)
    assert "bye" in b"".join([c async for c in backend.logs("wl-1", 0, follow=False)]).decode()


async def test_a_killed_runner_is_lost_and_takes_its_command_along(
    backend: LocalBackend, outcomes: Outcomes, settings: Settings
) -> None:
    await backend.start(
        launch_spec(*python_command("import time; print('ready', flush=True); time.sleep(60)"))
    )
    await wait_for_output(backend, "wl-1", "ready")
    status = read_json(RecordStore(settings.runs_dir).status_path("wl-1", 0))
    assert status is not None
    os.kill(status["runner_pid"], signal.SIGKILL)

    final = await outcomes.final("wl-1")

    assert final.state is ReplicaState.LOST
    assert final.reason == (
        f"its runner process {status['runner_pid']} ended (killed by signal 9 (SIGKILL)) "
        f"without recording how the command ended; "
        f"its sandbox (pid {status['child_pid']}) was killed with it"
    )
    wait_until_gone(status["child_pid"])


async def test_max_runtime_is_enforced(backend: LocalBackend, outcomes: Outcomes) -> None:
    await backend.start(launch_spec("sleep", "60", max_runtime_s=1))
    final = await outcomes.final("wl-1")
    assert (final.state, final.reason) == (ReplicaState.STOPPED, "exceeded max runtime of 1s")


async def test_start_never_starts_a_replica_twice(
    backend: LocalBackend, outcomes: Outcomes, settings: Settings
) -> None:
    gate, starts = workdir(settings) / "go", workdir(settings) / "starts"
    code = f"open({str(starts)!r}, 'a').write('started\\n')\n" + wait_for_file_then(gate, "")
    spec = launch_spec(*python_command(code))

    await backend.start(spec)
    await backend.start(spec)
    await wait_for_output(backend, "wl-1", "ready")
    release(gate)
    assert (await outcomes.final("wl-1")).state is ReplicaState.SUCCEEDED
    await backend.start(spec)  # finished replicas are not started again either

    assert starts.read_text() == "started\n"
    assert [o.state for o in await backend.observe()] == [ReplicaState.SUCCEEDED]


async def test_shell_syntax_in_a_single_string_runs_under_sh(
    backend: LocalBackend, outcomes: Outcomes, tmp_path: Path
) -> None:
    directory = shared_dir(tmp_path)
    await backend.start(
        launch_spec("echo replica=$ASTRAGO_REPLICA_INDEX > where.txt", working_dir=str(directory))
    )
    assert (await outcomes.final("wl-1")).state is ReplicaState.SUCCEEDED
    assert (directory / "where.txt").read_text() == "replica=0\n"


async def test_bad_launches_are_refused_before_anything_runs(
    backend: LocalBackend, settings: Settings, tmp_path: Path
) -> None:
    cases = [
        (launch_spec("true", working_dir=str(tmp_path / "missing")), "working directory .* does not exist"),
        (launch_spec("true", working_dir="relative/dir"), "must be an absolute path"),
        (launch_spec("true", replicas=(replica(0), replica(1, gpus=(9,)))), "GPU 9 is not on this node"),
        (launch_spec("true", max_runtime_s=0), "max runtime must be at least 1 second"),
        (launch_spec("true", replicas=(replica(node="elsewhere"),)), "placed on node 'elsewhere'"),
        (launch_spec("true", replicas=(replica(1),)), r"replica indices must be 0..0"),
        (launch_spec(), "no command"),
        (launch_spec("true", workload_id="../escape"), "cannot name a run directory"),
        (launch_spec("echo", "a\x00b"), r"command\[1\] contains a NUL byte"),
        (launch_spec("echo", "x" * 200_000), r"command\[1\] is 200000 bytes"),
        (launch_spec("echo", *["x" * 100_000] * 6), "command and env together"),
    ]
    for spec, message in cases:
        with pytest.raises(BackendError, match=message):
            await backend.start(spec)
    assert await backend.observe() == []
    assert not settings.logs_dir.joinpath("wl-1").exists()


async def test_forget_keeps_running_replicas_and_logs(
    backend: LocalBackend, outcomes: Outcomes, settings: Settings
) -> None:
    gate = workdir(settings) / "go"
    await backend.start(launch_spec(*python_command(wait_for_file_then(gate, "print('done')"))))
    await wait_for_output(backend, "wl-1", "ready")
    with pytest.raises(BackendError, match="still runs replicas"):
        await backend.forget("wl-1")
    release(gate)
    await outcomes.final("wl-1")

    await backend.forget("wl-1")
    await backend.forget("wl-1")  # idempotent

    assert await backend.observe() == []
    assert b"".join([c async for c in backend.logs("wl-1", 0, follow=True)]) == b"ready\ndone\n"


async def test_inventory_is_this_machine_with_simulated_gpus(backend: LocalBackend) -> None:
    [node] = await backend.inventory()
    assert node.name == NODE
    assert node.simulated
    assert node.cpu_milli == len(os.sched_getaffinity(0)) * 1000
    assert node.memory_mib > 0
    assert [(d.index, d.model, d.uuid, d.simulated) for d in node.devices] == [
        (i, "A100-80GB", f"GPU-sim-{NODE}-{i}", True) for i in range(4)
    ]


async def test_one_server_per_data_dir(backend: LocalBackend, settings: Settings) -> None:
    with pytest.raises(
        BackendError, match=f"another AstraGo server \\(pid {os.getpid()}\\) is using the data dir"
    ):
        await LocalBackend(settings).open()


async def test_nothing_works_before_open(settings: Settings) -> None:
    with pytest.raises(BackendError, match=r"not open; call open\(\) first"):
        await LocalBackend(settings).start(launch_spec("true"))


async def test_close_leaves_processes_running(settings: Settings) -> None:
    first = LocalBackend(settings)
    await first.open()
    await first.start(launch_spec("sleep", "60"))
    observation = await state_of(first, "wl-1")
    await first.close()

    second = LocalBackend(settings)
    await second.open()
    try:
        assert (await state_of(second, "wl-1")).state is ReplicaState.RUNNING
        assert (await state_of(second, "wl-1")).started_at == observation.started_at
        outcomes = Outcomes(second)
        await second.stop("wl-1", 0, "done")
        assert (await outcomes.final("wl-1")).state is ReplicaState.STOPPED
    finally:
        await second.close()
