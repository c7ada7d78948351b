from __future__ import annotations

import socket

import pytest

from astrago.backends.base import BackendError, DeviceInventory, ReplicaLaunch
from astrago.backends.local.plan import (
    MASTER_PORT_BASE,
    MASTER_PORT_SPAN,
    command_argv,
    master_port,
    replica_env,
    visible_devices,
    workload_base_env,
)
from astrago.backends.local.simulated import parse_simulated_gpus
from tests.unit.backends.local.factories import launch_spec, replica

REAL_GPUS = {
    0: DeviceInventory(index=0, model="NVIDIA A100-SXM4-80GB", memory_mib=81920, uuid="GPU-aaa"),
    1: DeviceInventory(index=1, model="NVIDIA A100-SXM4-80GB", memory_mib=81920, uuid="GPU-bbb"),
}


@pytest.mark.parametrize(
    ("command", "argv"),
    [
        (("python", "train.py", "--lr", "0.1"), ("python", "train.py", "--lr", "0.1")),
        (("nvidia-smi",), ("nvidia-smi",)),
        (("python train.py > out.txt",), ("/bin/sh", "-c", "python train.py > out.txt")),
        (("echo $HOME",), ("/bin/sh", "-c", "echo $HOME")),
        (("a && b",), ("/bin/sh", "-c", "a && b")),
        (("x > y", "z"), ("x > y", "z")),  # several words are an argv already: never re-parsed
    ],
)
def test_shell_only_for_a_single_string_in_shell_syntax(
    command: tuple[str, ...], argv: tuple[str, ...]
) -> None:
    assert command_argv(command) == argv


@pytest.mark.parametrize("command", [(), ("",)])
def test_an_empty_command_is_refused(command: tuple[str, ...]) -> None:
    with pytest.raises(BackendError, match="no command"):
        command_argv(command)


def test_real_gpus_are_exposed_by_uuid() -> None:
    assert visible_devices(replica(gpus=(1, 0)), REAL_GPUS) == (("GPU-bbb", "GPU-aaa"), False)


def test_uuids_from_the_launch_win() -> None:
    launch = ReplicaLaunch(
        index=0, node="n", cpu_milli=0, memory_mib=0, gpu_indices=(0,), gpu_uuids=("GPU-x",)
    )
    assert visible_devices(launch, REAL_GPUS) == (("GPU-x",), False)


def test_simulated_gpus_are_exposed_by_index() -> None:
    devices = {d.index: d for d in parse_simulated_gpus("4xA100-80GB", "n")}
    assert visible_devices(replica(gpus=(3, 1)), devices) == (("3", "1"), True)


def test_a_gpu_the_node_lacks_is_refused() -> None:
    with pytest.raises(BackendError, match=r"GPU 7 is not on this node \(its GPUs: 0, 1\)"):
        visible_devices(replica(gpus=(7,)), REAL_GPUS)


def test_env_layers_and_what_astrago_owns() -> None:
    spec = launch_spec("true", env={"LR": "0.1", "CUDA_VISIBLE_DEVICES": "0,1,2,3", "PYTHONUNBUFFERED": "0"})
    base = {"PATH": "/usr/bin", "ASTRAGO_ADMIN_PASSWORD": "secret", "CUDA_VISIBLE_DEVICES": "0"}

    env = replica_env(spec, spec.replicas[0], base, ("GPU-aaa",), simulated=False, port=None)

    assert env["PATH"] == "/usr/bin"
    assert "ASTRAGO_ADMIN_PASSWORD" not in env  # server settings never leak into jobs
    assert env["LR"] == "0.1"
    assert env["PYTHONUNBUFFERED"] == "0"  # the workload's choice wins over AstraGo's default
    assert env["CUDA_VISIBLE_DEVICES"] == "GPU-aaa"  # the workload cannot widen its GPUs
    assert env["ASTRAGO_WORKLOAD_ID"] == "wl-1"
    assert env["ASTRAGO_REPLICA_INDEX"] == "0"
    assert env["ASTRAGO_REPLICAS"] == "1"
    assert "ASTRAGO_SIMULATED_GPUS" not in env
    assert not {"MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK"} & env.keys()


def test_cpu_only_replicas_see_no_gpu() -> None:
    spec = launch_spec("true")
    env = replica_env(spec, spec.replicas[0], {"CUDA_VISIBLE_DEVICES": "0"}, (), simulated=False, port=None)
    assert env["CUDA_VISIBLE_DEVICES"] == ""


def test_multi_replica_jobs_get_the_torch_distributed_variables() -> None:
    spec = launch_spec("true", replicas=(replica(0), replica(1), replica(2)))

    env = replica_env(spec, spec.replicas[2], {}, ("1",), simulated=True, port=29511)

    assert env["MASTER_ADDR"] == "127.0.0.1"
    assert env["MASTER_PORT"] == "29511"
    assert env["WORLD_SIZE"] == "3"
    assert env["RANK"] == "2"
    assert env["ASTRAGO_SIMULATED_GPUS"] == "1"


def test_master_port_is_deterministic_and_skips_busy_ports() -> None:
    first = master_port("job-42", is_free=lambda port: True)
    assert MASTER_PORT_BASE <= first < MASTER_PORT_BASE + MASTER_PORT_SPAN
    assert master_port("job-42", is_free=lambda port: True) == first
    assert master_port("job-42", is_free=lambda port: port != first) != first


def test_master_port_is_really_free() -> None:
    port = master_port("job-43")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", port))


def test_no_free_port_is_a_clear_error() -> None:
    with pytest.raises(BackendError, match="no free port for MASTER_PORT"):
        master_port("job-44", is_free=lambda port: False)


def test_a_workload_inherits_only_allow_listed_variables_of_the_server() -> None:
    server_env = {
        "PATH": "/opt/bin:/usr/bin",
        "LANG": "C.UTF-8",
        "LC_ALL": "C",
        "TZ": "Asia/Seoul",
        "HOME": "/root",
        "ASTRAGO_ADMIN_PASSWORD": "s3cret",
        "ASTRAGO_DATABASE_URL": "postgresql://u:p@db/astrago",
        "AWS_SECRET_ACCESS_KEY": "key",
        "WANDB_API_KEY": "wandb",
        "SSH_AUTH_SOCK": "/run/user/0/agent",
    }
    env = workload_base_env(server_env, ["WANDB_API_KEY"], home="/data/workdirs/wl-1")
    assert env == {
        "PATH": "/opt/bin:/usr/bin",
        "LANG": "C.UTF-8",
        "LC_ALL": "C",
        "TZ": "Asia/Seoul",
        "WANDB_API_KEY": "wandb",  # named in workload_env_passthrough
        "HOME": "/data/workdirs/wl-1",
        "TMPDIR": "/tmp",
    }
    assert workload_base_env({}, [], home="/w")["PATH"] == "/usr/local/bin:/usr/bin:/bin"
    assert "ASTRAGO_ADMIN_PASSWORD" not in workload_base_env(server_env, ["ASTRAGO_ADMIN_PASSWORD"], "/w")
