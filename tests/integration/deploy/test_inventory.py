"""`astrago deploy inventory`: a kubespray hosts.yaml that the real `ansible-inventory` reads back."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.integration.deploy.cli import astrago

NODES = {
    "user": "astrago",
    "nodes": [
        {"name": "master-1", "address": "10.61.3.10", "roles": ["control-plane", "etcd"]},
        {"name": "worker-1", "address": "10.61.3.21", "roles": ["worker"], "gpu": True},
        {"name": "worker-2", "address": "10.61.3.22", "roles": ["worker"], "gpu": True, "user": "ubuntu"},
        {"name": "cpu-1", "address": "10.61.3.30", "roles": ["worker"]},
    ],
}


def write_nodes(tmp_path: Path, data: dict[str, object]) -> Path:
    path = tmp_path / "nodes.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def ansible_inventory(hosts: Path) -> dict[str, object]:
    binary = Path(sys.executable).with_name("ansible-inventory")
    if not binary.exists():
        pytest.fail("ansible-inventory is missing: install the dev extras (ansible-core)")
    result = subprocess.run(
        [str(binary), "-i", str(hosts), "--list"],
        capture_output=True,
        text=True,
        check=True,
        env={
            "ANSIBLE_LOCAL_TEMP": str(hosts.parent / ".ansible"),
            "PATH": "/usr/bin:/bin",
            "HOME": str(hosts.parent),
        },
    )
    data: dict[str, object] = json.loads(result.stdout)
    return data


def test_inventory_is_read_back_by_ansible(tmp_path: Path) -> None:
    nodes = write_nodes(tmp_path, NODES)
    outcome = astrago("deploy", "inventory", "--nodes", str(nodes), "--out", str(tmp_path / "hosts.yaml"))
    assert outcome.exit_code == 0, outcome.message
    parsed = ansible_inventory(tmp_path / "hosts.yaml")
    groups = {name: set(value.get("hosts", [])) for name, value in parsed.items() if isinstance(value, dict)}
    assert groups["kube_control_plane"] == {"master-1"}
    assert groups["etcd"] == {"master-1"}
    assert groups["kube_node"] == {"worker-1", "worker-2", "cpu-1"}
    assert groups["gpu"] == {"worker-1", "worker-2"}
    assert set(parsed["k8s_cluster"]["children"]) == {"kube_control_plane", "kube_node"}  # type: ignore[index]
    hostvars = parsed["_meta"]["hostvars"]  # type: ignore[index]
    assert hostvars["worker-1"]["ansible_host"] == "10.61.3.21"
    assert hostvars["worker-1"]["ansible_user"] == "astrago"
    assert hostvars["worker-2"]["ansible_user"] == "ubuntu"
    assert hostvars["worker-2"]["nvidia_accelerator_enabled"] is True


@pytest.mark.parametrize(
    ("change", "key", "message"),
    [
        (
            lambda n: n["nodes"][2].update(address="10.61.3.21"),
            "nodes[2].address",
            "10.61.3.21 is used by nodes[1]",
        ),
        (lambda n: n["nodes"][3].update(name="worker-1"), "nodes[3].name", "worker-1 is used by nodes[1]"),
        (lambda n: n["nodes"][1].update(address="10.61.3.321"), "nodes[1].address", "is not an IP address"),
        (lambda n: n["nodes"][1].update(roles=["master"]), "nodes[1].roles[0]", "Input should be"),
        (lambda n: n["nodes"][0].update(roles=["etcd"]), "nodes", "no node has the control-plane role"),
        (lambda n: n["nodes"][1].update(roles=["worker", "etcd"]), "nodes", "2 etcd members"),
    ],
)
def test_bad_node_lists_name_the_file_and_key(tmp_path: Path, change, key: str, message: str) -> None:  # type: ignore[no-untyped-def]
    data = json.loads(json.dumps(NODES))
    change(data)
    nodes = write_nodes(tmp_path, data)
    outcome = astrago("deploy", "inventory", "--nodes", str(nodes), "--out", str(tmp_path / "hosts.yaml"))
    assert outcome.exit_code == 1
    assert outcome.message.startswith(f"{nodes}: {key}: ")
    assert message in outcome.message
    assert not (tmp_path / "hosts.yaml").exists()
