"""The Kubernetes backend against a real cluster (`make test-cluster`; not in CI).

Needs KUBECONFIG pointing at a cluster (kind, k3s or a real one) where the credentials may create a
namespace. Optional: ASTRAGO_TEST_NAMESPACE (default astrago-test), ASTRAGO_TEST_IMAGE (default
busybox:1.36, for air-gapped clusters point it at the private registry), ASTRAGO_TEST_GPU_IMAGE
(default nvidia/cuda:12.4.1-base-ubuntu22.04; the GPU case runs only where a node offers nvidia.com/gpu)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from lightkube import AsyncClient, KubeConfig
from lightkube.core.exceptions import ApiError
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Namespace

from astrago.backends.base import LaunchSpec, NodeInventory, ReplicaLaunch, ReplicaObservation
from astrago.backends.kubernetes import KubernetesBackend
from astrago.config import Settings
from astrago.domain.enums import ReplicaState, WorkloadKind

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(not os.environ.get("KUBECONFIG"), reason="needs a real cluster from KUBECONFIG"),
    pytest.mark.timeout(900),
]
NAMESPACE = os.environ.get("ASTRAGO_TEST_NAMESPACE", "astrago-test")
IMAGE = os.environ.get("ASTRAGO_TEST_IMAGE", "busybox:1.36")
GPU_IMAGE = os.environ.get("ASTRAGO_TEST_GPU_IMAGE", "nvidia/cuda:12.4.1-base-ubuntu22.04")
WAIT_S = 300.0


@pytest.fixture
async def namespace() -> AsyncIterator[str]:
    client = AsyncClient(config=KubeConfig.from_env())
    created = False
    try:
        await client.get(Namespace, NAMESPACE)
    except ApiError:
        await client.create(Namespace(metadata=ObjectMeta(name=NAMESPACE)))
        created = True
    try:
        yield NAMESPACE
    finally:
        if created:
            await client.delete(Namespace, NAMESPACE)
        await client.close()


@pytest.fixture
async def backend(namespace: str, tmp_path: Path) -> AsyncIterator[KubernetesBackend]:
    settings = Settings(kubeconfig=os.environ["KUBECONFIG"], namespace=namespace, data_dir=tmp_path)
    opened = KubernetesBackend(settings)
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


def cpu_job(node: NodeInventory, script: str, *, kind: WorkloadKind = WorkloadKind.JOB) -> LaunchSpec:
    workload_id = f"ct-{uuid.uuid4().hex[:8]}"
    return LaunchSpec(
        workload_id=workload_id,
        name=workload_id,
        workspace="cluster-test",
        kind=kind,
        replicas=(ReplicaLaunch(index=0, node=node.name, cpu_milli=100, memory_mib=64),),
        image=IMAGE,
        command=("sh", "-c", script),
    )


async def until(
    backend: KubernetesBackend, workload_id: str, done: Callable[[ReplicaObservation], bool]
) -> ReplicaObservation:
    async def poll() -> ReplicaObservation:
        while True:
            for observation in await backend.observe():
                if observation.workload_id == workload_id and done(observation):
                    return observation
            await asyncio.sleep(1)

    return await asyncio.wait_for(poll(), WAIT_S)


def state_is(*states: ReplicaState) -> Callable[[ReplicaObservation], bool]:
    return lambda observation: observation.state in states


async def schedulable_node(backend: KubernetesBackend, want_gpu: bool = False) -> NodeInventory | None:
    """A ready node whose taints the test pods tolerate (AstraGo pods tolerate only the GPU taint)."""
    for node in await backend.inventory():
        blocking = [
            t
            for t in node.taints
            if not t.startswith("nvidia.com/gpu") and t.endswith(("NoSchedule", "NoExecute"))
        ]
        has_gpu = dict(node.gpu_resources).get("nvidia.com/gpu", 0) > 0
        if node.schedulable and not blocking and (has_gpu or not want_gpu):
            return node
    return None


async def cleanup(backend: KubernetesBackend, *specs: LaunchSpec) -> None:
    for spec in specs:
        await backend.forget(spec.workload_id)


async def run_and_forget(
    backend: KubernetesBackend, spec: LaunchSpec, check: Callable[[], Awaitable[None]]
) -> None:
    await backend.start(spec)
    try:
        await check()
    finally:
        await cleanup(backend, spec)


async def test_cpu_jobs_succeed_fail_and_cancel(
    backend: KubernetesBackend, namespace: str, tmp_path: Path
) -> None:
    node = await schedulable_node(backend)
    assert node is not None, "the cluster has no schedulable node"
    hello = cpu_job(node, "echo hello from astrago")
    failing = cpu_job(node, "exit 3")
    sleeper = cpu_job(node, "sleep 3600")
    for spec in (hello, failing, sleeper):
        await backend.start(spec)
    try:
        done = await until(backend, hello.workload_id, state_is(ReplicaState.SUCCEEDED, ReplicaState.FAILED))
        assert done.state is ReplicaState.SUCCEEDED, done.reason
        logs = b"".join([chunk async for chunk in backend.logs(hello.workload_id, 0, follow=False)])
        assert b"hello from astrago" in logs
        failed = await until(
            backend, failing.workload_id, state_is(ReplicaState.FAILED, ReplicaState.SUCCEEDED)
        )
        assert (failed.state, failed.exit_code) == (ReplicaState.FAILED, 3)
        await until(backend, sleeper.workload_id, state_is(ReplicaState.RUNNING))

        # a second backend (a restarted server) adopts everything and creates nothing twice
        restarted = KubernetesBackend(
            Settings(kubeconfig=os.environ["KUBECONFIG"], namespace=namespace, data_dir=tmp_path)
        )
        await restarted.open()
        try:
            await restarted.start(sleeper)
            observed = [o for o in await restarted.observe() if o.workload_id == sleeper.workload_id]
            assert [o.state for o in observed] == [ReplicaState.RUNNING]
        finally:
            await restarted.close()

        await backend.stop(sleeper.workload_id, grace_s=5, reason="cancelled by the cluster test")
        stopped = await until(backend, sleeper.workload_id, state_is(ReplicaState.STOPPED))
        assert stopped.reason == "cancelled by the cluster test"
    finally:
        await cleanup(backend, hello, failing, sleeper)


async def test_gpu_job_where_the_cluster_has_gpus(backend: KubernetesBackend) -> None:
    node = await schedulable_node(backend, want_gpu=True)
    if node is None:
        pytest.skip("no node offers nvidia.com/gpu")
    spec = LaunchSpec(
        workload_id=f"ct-gpu-{uuid.uuid4().hex[:8]}",
        name="gpu-smoke",
        workspace="cluster-test",
        kind=WorkloadKind.JOB,
        replicas=(ReplicaLaunch(0, node.name, 500, 512, gpu_indices=(0,), gpu_milli=1000),),
        image=GPU_IMAGE,
        command=("nvidia-smi", "-L"),
    )

    async def check() -> None:
        done = await until(backend, spec.workload_id, state_is(ReplicaState.SUCCEEDED, ReplicaState.FAILED))
        assert done.state is ReplicaState.SUCCEEDED, done.reason
        logs = b"".join([chunk async for chunk in backend.logs(spec.workload_id, 0, follow=False)])
        assert b"GPU 0" in logs

    await run_and_forget(backend, spec, check)
