"""On Kubernetes, as on the local backend, an interactive or service replica is RUNNING only once its
readiness probe passes, and fails with a reason when it is not ready within its readiness timeout.

The Kubernetes API is the kmock emulator (a real HTTP server on loopback); it runs no kubelet, so the test
plays it (fake_cluster.Kubelet): it starts the container and reports what its readiness probe says."""

from __future__ import annotations

from typing import Any

from astrago.backends.kubernetes import KubernetesBackend
from astrago.backends.kubernetes.naming import (
    READINESS_TIMEOUT_ANNOTATION,
    READY_AT_ANNOTATION,
    object_name,
)
from astrago.domain.enums import ReplicaState, WorkloadKind
from tests.integration.backends.kubernetes.fake_cluster import FakeCluster, eventually
from tests.integration.backends.kubernetes.test_backend import Watched, watching
from tests.unit.backends.kubernetes.factories import launch_spec, replica

S = ReplicaState
PODS = "/api/v1/namespaces/astrago/pods"


async def _pod(cluster: FakeCluster, name: str) -> dict[str, Any]:
    (found,) = [pod for pod in await cluster.kubelet.list(PODS) if pod["metadata"]["name"] == name]
    return found


async def test_an_interactive_replica_runs_once_ready_and_stays_running_when_a_probe_fails_later(
    cluster: FakeCluster, backend: KubernetesBackend
) -> None:
    spec = launch_spec(WorkloadKind.INTERACTIVE, workload_id="nb", ports=(8888,), replicas=(replica(gpus=0),))
    async with watching(backend) as watched:
        await backend.start(spec)
        pod = object_name("nb")  # an interactive replica is a pod of its own
        await cluster.kubelet.run(pod, ready=False)
        await _eventually_reason(watched, "nb", "waiting for its readiness probe (a connection to port 8888)")
        assert watched.states("nb")[-1] is S.STARTING
        await cluster.kubelet.probe(pod, ready=True)
        await watched.reaches("nb", S.RUNNING)
        marked = await _marked(cluster, pod)
        assert marked["metadata"]["annotations"][READINESS_TIMEOUT_ANNOTATION] == "300"  # the default
        await cluster.kubelet.probe(pod, ready=False)  # out of the Service's rotation, still running
        assert [o.state for o in await backend.observe() if o.workload_id == "nb"] == [S.RUNNING]
        assert watched.states("nb")[-1] is S.RUNNING
    # a server started later reads the mark from the pod: still a running replica
    restarted = KubernetesBackend(backend._settings)
    await restarted.open()
    try:
        observed = [o for o in await restarted.observe() if o.workload_id == "nb"]
        assert [o.state for o in observed] == [S.RUNNING]
    finally:
        await restarted.close()


async def test_a_service_never_ready_fails_after_its_readiness_timeout(
    cluster: FakeCluster, backend: KubernetesBackend
) -> None:
    spec = launch_spec(
        WorkloadKind.SERVICE,
        workload_id="api",
        ports=(8000,),
        extra={"readiness_timeout": "1", "health_path": "/healthz"},
    )
    async with watching(backend) as watched:
        await backend.start(spec)
        (pod,) = await cluster.kubelet.reconcile()
        lines = [f"loading shard {i}\n" for i in range(30)] + ["listening on 0.0.0.0:9000\n"]
        cluster.api.pod_logs[pod] = "".join(lines)
        await cluster.kubelet.run(pod, ready=False)
        (failed,) = await watched.reaches("api", S.FAILED)  # no other change comes: the deadline does it
    assert failed.reason is not None
    first, *tail = failed.reason.split("\n")
    assert first == (
        "not ready after 1s: its readiness probe (GET /healthz on port 8000) never passed; last log lines:"
    )
    assert tail == [line.rstrip() for line in lines[-20:]]  # the last 20, as on the local backend


async def _marked(cluster: FakeCluster, name: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        pod = await _pod(cluster, name)
        return pod if READY_AT_ANNOTATION in pod["metadata"]["annotations"] else None

    found: dict[str, Any] = await eventually(check)
    return found


async def _eventually_reason(watched: Watched, workload_id: str, reason: str) -> None:
    await eventually(lambda: (o := watched.latest(workload_id)) is not None and o.reason == reason)
