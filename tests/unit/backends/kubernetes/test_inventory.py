"""Node objects → inventory: GFD labels, MIG, time-sliced shares, health, readiness and taints."""

from __future__ import annotations

from typing import Any

from astrago.backends.kubernetes.inventory import Held, node_inventory, pod_holds, shared_units_per_gpu
from tests.unit.backends.kubernetes.factories import node_manifest

Manifest = dict[str, Any]

SHARED = "nvidia.com/gpu.shared"


def test_whole_gpu_node() -> None:
    node = node_inventory(node_manifest("gpu-1", gpus=8, cpu="127500m", memory="1056784348Ki"), SHARED)
    assert node.cpu_milli == 127500
    assert node.memory_mib == 1056784348 // 1024
    assert len(node.devices) == 8
    assert node.devices[0].model == "NVIDIA-A100-SXM4-80GB"
    assert node.devices[0].memory_mib == 81920
    assert node.schedulable
    assert node.ready
    assert node.gpu_resources == (("nvidia.com/gpu", 8),)


def test_unhealthy_gpus_are_the_ones_the_device_plugin_withdrew() -> None:
    manifest = node_manifest("gpu-1", gpus=4)
    manifest["status"]["allocatable"]["nvidia.com/gpu"] = "3"
    node = node_inventory(manifest, SHARED)
    assert [device.healthy for device in node.devices] == [True, True, True, False]


def test_mig_mixed_strategy() -> None:
    manifest = node_manifest(
        "mig-1",
        gpus=2,
        extra_labels={"nvidia.com/mig.strategy": "mixed"},
        extra_allocatable={
            "nvidia.com/gpu": "0",
            "nvidia.com/mig-1g.10gb": "7",
            "nvidia.com/mig-3g.40gb": "2",
        },
    )
    node = node_inventory(manifest, SHARED)
    assert len(node.devices) == 2
    assert all(device.mig_enabled for device in node.devices)
    assert dict(node.gpu_resources) == {
        "nvidia.com/gpu": 0,
        "nvidia.com/mig-1g.10gb": 7,
        "nvidia.com/mig-3g.40gb": 2,
    }


def test_time_sliced_node_counts_shares_per_gpu() -> None:
    manifest = node_manifest(
        "share-1",
        gpus=2,
        product="NVIDIA-L40S-SHARED",
        extra_allocatable={"nvidia.com/gpu": "0", SHARED: "20"},
    )
    node = node_inventory(manifest, SHARED)
    assert [device.model for device in node.devices] == ["NVIDIA-L40S", "NVIDIA-L40S"]
    assert shared_units_per_gpu(node, SHARED) == 10


def test_cordoned_not_ready_tainted_and_cpu_only_nodes() -> None:
    taints = [
        {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"},
        {"key": "x", "effect": "NoExecute"},
    ]
    node = node_inventory(node_manifest("n", gpus=0, unschedulable=True, taints=taints), SHARED)
    assert not node.schedulable
    assert node.ready
    assert node.devices == ()
    assert node.taints == ("nvidia.com/gpu=present:NoSchedule", "x:NoExecute")
    assert not node_inventory(node_manifest("n", ready=False), SHARED).schedulable


def _pod(node: str | None, *, phase: str = "Running", **containers: dict[str, dict[str, str]]) -> Manifest:
    return {
        "metadata": {"name": "other", "namespace": "team-x"},
        "spec": {
            "nodeName": node,
            "containers": [{"name": name, "resources": resources} for name, resources in containers.items()],
        },
        "status": {"phase": phase},
    }


def test_a_foreign_pod_holds_its_requests_and_gpu_limits() -> None:
    pod = _pod(
        "gpu-1",
        main={"requests": {"cpu": "1500m", "memory": "2Gi"}, "limits": {"nvidia.com/gpu": "2"}},
        sidecar={"requests": {"cpu": "500m", "memory": "512Mi"}},
    )
    assert pod_holds(pod) == ("gpu-1", Held(cpu_milli=2000, memory_mib=2560, gpus=2))


def test_a_larger_init_container_sets_the_pods_requests() -> None:
    pod = _pod("gpu-1", main={"requests": {"cpu": "1"}})
    pod["spec"]["initContainers"] = [{"name": "warm", "resources": {"requests": {"cpu": "3"}}}]
    assert pod_holds(pod) == ("gpu-1", Held(cpu_milli=3000))


def test_unbound_or_ended_pods_hold_nothing() -> None:
    gpu = {"limits": {"nvidia.com/gpu": "1"}}
    assert pod_holds(_pod(None, main=gpu)) is None
    assert pod_holds(_pod("gpu-1", phase="Succeeded", main=gpu)) is None
    assert pod_holds(_pod("gpu-1", phase="Failed", main=gpu)) is None


def test_what_others_hold_is_left_out_of_the_node() -> None:
    held = Held(cpu_milli=4000, memory_mib=8192, gpus=3)
    node = node_inventory(node_manifest("gpu-1", gpus=4, cpu="64", memory="512Gi"), SHARED, held)
    assert node.cpu_milli == 60000
    assert node.memory_mib == 512 * 1024 - 8192
    assert len(node.devices) == 4  # the devices stay: the others' pods may end
    assert node.gpus_held_by_others == 3
