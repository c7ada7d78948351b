"""`astrago run` from a directory on the Kubernetes backend: the pod's init container fetches the code.

The Kubernetes API is emulated (the test suite's kmock fake cluster, whose helper plays the controllers
and the kubelet but runs no containers). So the test reads the pod the real server created through it,
and runs that pod's init container command, with that pod's environment, here against the real server:
what the init container would unpack is exactly the user's directory, until the workload ends."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.server import ADMIN_PASSWORD, ServerProcess, User, wait_for


@pytest.fixture
def fake_cluster(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "cluster"
    directory.mkdir()
    log = (tmp_path / "cluster.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.backends.kubernetes.fake_cluster", str(directory)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(lambda: (directory / "kubeconfig").exists(), what="the fake cluster")
        yield directory / "kubeconfig"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def admin(fake_cluster: Path, tmp_path: Path) -> Iterator[User]:
    server = ServerProcess(
        data_dir=tmp_path / "data",
        simulate_gpus="",
        extra_env={"ASTRAGO_BACKEND": "kubernetes", "ASTRAGO_KUBECONFIG": str(fake_cluster)},
    )
    server.extra_env["ASTRAGO_INTERNAL_URL"] = server.url  # pods reach the API here
    server.start()
    user = User(server, "admin", tmp_path / "admin-home")
    user.login(ADMIN_PASSWORD)
    yield user
    server.stop()


def pod_of(kubeconfig: Path, workload_id: str) -> dict[str, Any]:
    api = yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
    pods = httpx.get(
        f"{api}/api/v1/namespaces/astrago/pods",
        params={"labelSelector": f"astrago.io/workload={workload_id}"},
    ).json()["items"]
    return dict(pods[0]) if pods else {}


def run_init_container(pod: dict[str, Any], target: Path) -> subprocess.CompletedProcess[str]:
    (fetcher,) = pod["spec"]["initContainers"]
    env = {
        **os.environ,
        **{item["name"]: item["value"] for item in fetcher["env"]},
        "ASTRAGO_CODE_DIR": str(target),
    }
    assert fetcher["command"][0] == "python3"
    return subprocess.run(
        [sys.executable, *fetcher["command"][1:]], env=env, capture_output=True, text=True, timeout=60
    )


def test_a_pod_unpacks_the_users_directory_until_its_workload_ends(
    admin: User, fake_cluster: Path, tmp_path: Path
) -> None:
    project = admin.workdir
    (project / "src").mkdir(parents=True)
    (project / "train.py").write_text("import src.model\n")
    (project / "src" / "model.py").write_text("LAYERS = 50\n")
    (project / "out.log").write_text("ignored")
    (project / ".gitignore").write_text("*.log\n")

    submitted = admin.cli(
        "run", "--image", "pytorch/pytorch:2.3.1", "--", "sh", "-c", "python train.py; sleep 60"
    )
    assert "uploaded" in submitted.stderr
    workload = submitted.stdout.strip()
    admin.wait_status(workload, "RUNNING")
    pod = wait_for(lambda: pod_of(fake_cluster, workload), what="its pod")
    assert pod["spec"]["containers"][0]["workingDir"] == "/astrago/code"

    fetched = run_init_container(pod, tmp_path / "code")
    assert fetched.returncode == 0, fetched.stderr
    unpacked = sorted(str(p.relative_to(tmp_path / "code")) for p in (tmp_path / "code").rglob("*"))
    assert unpacked == [".gitignore", "src", "src/model.py", "train.py"]

    admin.cli("cancel", workload)
    admin.wait_status(workload, "CANCELLED")
    refused = run_init_container(pod, tmp_path / "late")
    assert refused.returncode != 0
    assert "refused the code bundle download (403)" in refused.stderr
    assert "has ended" in refused.stderr
