"""pid → container → pod: every example in ../shared/data/gpu/cgroup, and a fake proc tree."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from astrago.gpu.cgroup import ContainerRef, parse_cgroup_path, parse_proc_cgroup
from astrago.gpu.procfs import ProcessTable, format_cmdline, read_start_time
from tests.unit.gpu.proc_tree import FakeProc, systemd_containerd

UID = "12345678-1234-1234-1234-123456789abc"
CID = "0123456789abcdef" * 4

# Expected result per example heading in proc_pid_cgroup_examples.md, in file order.
EXPECTED = {
    "cgroup v1, cgroupfs driver, docker": ContainerRef(
        "3d274242-8ee0-11e9-a8a6-1e68d864ef1a",
        "3e74d3fd9db4c9dd921ae05c2502fb984d0cde1b36e581b13f79c639da4518a1",
    ),
    "Host (non-container) process, cgroup v1": ContainerRef(None, None),
    "CRI-O conmon scope path": ContainerRef("0b7632a2-a56e-4278-987a-22de18008dbe", None),
    "cgroup v2 (unified), systemd driver, containerd": ContainerRef(UID, CID, "containerd"),
    "cgroup v2, systemd, CRI-O, BestEffort": ContainerRef(UID, CID, "cri-o"),
    "cgroup v2, systemd, Guaranteed QoS (no qos slice)": ContainerRef(UID, CID, "containerd"),
    "cgroup v2, cgroupfs driver, containerd": ContainerRef(UID, CID, None),
    "cgroup v2 read from a *private cgroup namespace*": ContainerRef(UID, CID, "containerd"),
    "cgroup v1/v2 hybrid (v1 controllers + unified line)": ContainerRef(UID, CID, None),
    "Plain docker (not Kubernetes), systemd": ContainerRef(
        None, "9ec39b91f3d70e1beff50a308f77067065ea6be0d91a3378375056cd4422cf3d", "docker"
    ),
}


def _examples(shared_data: Path) -> list[tuple[str, str]]:
    """(heading, code block) for every section of the examples file that holds a code block."""
    text = (shared_data / "gpu" / "cgroup" / "proc_pid_cgroup_examples.md").read_text()
    found = []
    for section in text.split("\n## ")[1:]:
        heading, _, body = section.partition("\n")
        block = re.search(r"```\n(.*?)```", body, re.S)
        if block:
            found.append((heading, block.group(1)))
    return found


def test_every_documented_example(shared_data: Path) -> None:
    examples = _examples(shared_data)
    assert len(examples) == len(EXPECTED)
    for heading, block in examples:
        key = next(k for k in EXPECTED if heading.startswith(k))
        if block.startswith("/sys/fs/cgroup/"):  # a bare path, as printed in the kubelet e2e comment
            got = parse_cgroup_path(block.strip())
        else:
            got = parse_proc_cgroup(block)
        assert got == EXPECTED[key], heading
        for line in block.splitlines()[1:]:  # both lines of the private-namespace example parse the same
            if key.startswith("cgroup v2 read from"):
                assert parse_proc_cgroup(line) == EXPECTED[key]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "0::/\n",
        "0::/system.slice/ssh.service\n",
        "0::/kubepods.slice/kubepods-burstable.slice/crio-conmon-" + CID + ".scope\n",
    ],
)
def test_nothing_is_guessed_outside_pods(text: str) -> None:
    assert parse_proc_cgroup(text).pod_uid is None


def test_start_time_survives_parentheses_and_spaces_in_the_command() -> None:
    fields = " ".join(["S", *["0"] * 18, "4242", "0"])
    assert read_start_time(f"77 (evil) (name) {fields}") == 4242


def test_cmdline_is_joined_and_capped() -> None:
    assert format_cmdline(b"python\0train.py\0--lr\x000.1\0") == "python train.py --lr 0.1"
    capped = format_cmdline(b"x" * 1000, limit=10)
    assert len(capped) == 10
    assert capped.endswith("…")


def test_fake_proc_tree_pods_host_processes_vanished_and_reused_pids(tmp_path: Path) -> None:
    proc = FakeProc(tmp_path)
    proc.add(100, ["python", "train.py"], systemd_containerd(UID, CID))
    proc.add(200, ["/usr/bin/Xorg"], "0::/system.slice/display-manager.service\n")
    table = ProcessTable(tmp_path)

    in_pod = table.lookup(100)
    assert in_pod is not None
    assert in_pod.container == ContainerRef(UID, CID, "containerd")
    assert in_pod.command == "python train.py"
    host = table.lookup(200)
    assert host is not None
    assert host.container.pod_uid is None
    assert table.lookup(300) is None  # never existed / vanished

    proc.remove(100)
    assert table.lookup(100) is None  # vanished: gone from the cache too
    assert len(table) == 1

    # PID 200 is reused by a new process in a pod: a new start time means a fresh lookup
    proc.add(200, ["python", "serve.py"], systemd_containerd(UID, CID), start_time=5000)
    reused = table.lookup(200)
    assert reused is not None
    assert reused.command == "python serve.py"
    assert reused.container.pod_uid == UID

    # same (pid, start time): served from the cache, even if the files changed underneath
    (tmp_path / "200" / "cmdline").write_bytes(b"changed\0")
    cached = table.lookup(200)
    assert cached is not None
    assert cached.command == "python serve.py"

    table.forget_all_but(set())
    assert len(table) == 0
