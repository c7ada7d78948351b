"""GPUs, CPU and memory held by pods AstraGo did not create are left out of the inventory, against the
kmock API emulator (fake_cluster.py; no real Kubernetes API server runs here)."""

from __future__ import annotations

from typing import Any

from astrago.backends.kubernetes import KubernetesBackend
from tests.integration.backends.kubernetes.fake_cluster import FakeCluster, eventually
from tests.unit.backends.kubernetes.factories import launch_spec

Manifest = dict[str, Any]


def _foreign_pod(name: str, namespace: str, node: str, gpus: int, phase: str = "Running") -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "nodeName": node,
            "containers": [
                {
                    "name": "main",
                    "image": "other:1",
                    "resources": {
                        "requests": {"cpu": "2", "memory": "4Gi"},
                        "limits": {"nvidia.com/gpu": gpus},
                    },
                }
            ],
        },
        "status": {"phase": phase},
    }


async def _node(backend: KubernetesBackend, name: str) -> Any:
    return next(node for node in await backend.inventory() if node.name == name)


async def test_gpus_of_pods_astrago_did_not_create_are_held(
    cluster: FakeCluster, backend: KubernetesBackend
) -> None:
    before = await _node(backend, "gpu-1")
    # two namespaces hold a pod with the same name: both count
    await cluster.kubelet.create(
        "/api/v1/namespaces/team-x/pods", _foreign_pod("train", "team-x", "gpu-1", 2)
    )
    await cluster.kubelet.create(
        "/api/v1/namespaces/team-y/pods", _foreign_pod("train", "team-y", "gpu-1", 1)
    )
    await cluster.kubelet.create(
        "/api/v1/namespaces/team-y/pods", _foreign_pod("done", "team-y", "gpu-1", 4, phase="Succeeded")
    )

    async def held() -> bool:
        return (await _node(backend, "gpu-1")).gpus_held_by_others == 3

    await eventually(held)
    after = await _node(backend, "gpu-1")
    assert after.cpu_milli == before.cpu_milli - 4000
    assert after.memory_mib == before.memory_mib - 8192
    assert (await _node(backend, "gpu-2")).gpus_held_by_others == 0


async def test_astragos_own_pods_are_not_counted_as_others(
    cluster: FakeCluster, backend: KubernetesBackend
) -> None:
    await backend.start(launch_spec(workload_id="mine"))
    assert await cluster.kubelet.reconcile()

    async def listed() -> bool:
        return len(backend._all_pods.objects if backend._all_pods else {}) >= 1

    await eventually(listed)
    assert all(node.gpus_held_by_others == 0 for node in await backend.inventory())
