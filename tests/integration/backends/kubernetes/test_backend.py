"""The Kubernetes backend against a real HTTP Kubernetes API emulator (PyPI kmock) on loopback.

kmock does not run pods or controllers, so `Kubelet` (fake_cluster.py) plays them: it creates the pods
of Jobs/Deployments/MPIJobs, binds them to the nodes the affinity names, moves them Pending → Running →
Succeeded/Failed and collects garbage. Everything the backend does goes over HTTP to the emulator."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from astrago.auth import code_credentials
from astrago.backends.base import Backend, BackendError, ReplicaObservation
from astrago.backends.kubernetes import KubernetesBackend, OrphanPolicy
from astrago.backends.kubernetes.manifests import CODE_DIR
from astrago.backends.kubernetes.naming import object_name
from astrago.domain.enums import ReplicaState, WorkloadKind
from tests.integration.backends.kubernetes.fake_cluster import FakeCluster, eventually, write_kubeconfig
from tests.unit.backends.kubernetes.factories import launch_spec, replica, volume

S = ReplicaState
JOBS = "/apis/batch/v1/namespaces/astrago/jobs"
DEPLOYMENTS = "/apis/apps/v1/namespaces/astrago/deployments"
SERVICES = "/api/v1/namespaces/astrago/services"
CLAIMS = "/api/v1/namespaces/astrago/persistentvolumeclaims"
MPIJOBS = "/apis/kubeflow.org/v2beta1/namespaces/astrago/mpijobs"


class Watched:
    """Everything `watch()` yields, collected in the background."""

    def __init__(self) -> None:
        self.seen: list[ReplicaObservation] = []

    def states(self, workload_id: str, replica_index: int = 0) -> list[ReplicaState]:
        return [
            o.state for o in self.seen if o.workload_id == workload_id and o.replica_index == replica_index
        ]

    def latest(self, workload_id: str, replica_index: int = 0) -> ReplicaObservation | None:
        matching = [o for o in self.seen if o.workload_id == workload_id and o.replica_index == replica_index]
        return matching[-1] if matching else None

    async def reaches(
        self, workload_id: str, state: ReplicaState, replicas: int = 1
    ) -> list[ReplicaObservation]:
        def check() -> bool:
            return all(
                (o := self.latest(workload_id, i)) is not None and o.state is state for i in range(replicas)
            )

        await eventually(check)
        return [o for i in range(replicas) if (o := self.latest(workload_id, i)) is not None]


@contextlib.asynccontextmanager
async def watching(backend: KubernetesBackend) -> AsyncIterator[Watched]:
    watched = Watched()

    async def collect() -> None:
        async for observation in backend.watch():
            watched.seen.append(observation)

    task = asyncio.create_task(collect())
    await asyncio.sleep(0)  # subscribe before the test acts
    try:
        yield watched
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def started_pods(cluster: FakeCluster, run: bool = True) -> list[str]:
    pods = await cluster.kubelet.reconcile()
    if run:
        for pod in pods:
            await cluster.kubelet.run(pod)
    return pods


async def _states(backend: KubernetesBackend, workload_id: str, expected: list[ReplicaState]) -> bool:
    return by_state(await backend.observe(), workload_id) == expected


async def _two(inventory: Any) -> Any:
    nodes = await inventory
    return nodes if len(nodes) == 2 else None


def by_state(observations: list[ReplicaObservation], workload_id: str) -> list[ReplicaState]:
    return [o.state for o in observations if o.workload_id == workload_id]


async def test_backend_satisfies_the_protocol(backend: KubernetesBackend) -> None:
    assert isinstance(backend, Backend)


async def test_job_runs_and_finishes(cluster: FakeCluster, backend: KubernetesBackend) -> None:
    async with watching(backend) as watched:
        await backend.start(launch_spec(workload_id="ok"))
        await backend.start(launch_spec(workload_id="bad", replicas=(replica(node="gpu-2"),)))
        ok_pod, bad_pod = await started_pods(cluster)
        await watched.reaches("ok", S.RUNNING)
        await cluster.kubelet.finish(ok_pod)
        await cluster.kubelet.finish(bad_pod, exit_code=3)
        (done,) = await watched.reaches("ok", S.SUCCEEDED)
        (failed,) = await watched.reaches("bad", S.FAILED)
    assert watched.states("ok") == [S.STARTING, S.RUNNING, S.SUCCEEDED]
    assert done.node == "gpu-1"
    assert (failed.exit_code, failed.reason, failed.node) == (3, "exited with code 3", "gpu-2")
    observed = await backend.observe()
    assert by_state(observed, "ok") == [S.SUCCEEDED]
    assert by_state(observed, "bad") == [S.FAILED]


async def test_workloads_share_one_volumes_claim_and_mount_their_folders(
    cluster: FakeCluster, backend: KubernetesBackend
) -> None:
    """Every volume is a folder of the one ReadWriteMany claim the server writes uploads into."""
    await backend.start(launch_spec(workload_id="reader", volumes=(volume(read_only=True),)))
    await backend.start(launch_spec(workload_id="writer", volumes=(volume("weights", "/out"),)))
    (claim,) = await cluster.kubelet.list(CLAIMS)
    assert claim["metadata"]["name"] == "astrago-volumes"
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    jobs = {job["metadata"]["name"]: job for job in await cluster.kubelet.list(JOBS)}
    reader = jobs[object_name("reader")]["spec"]["template"]["spec"]
    (pod_volume,) = reader["volumes"]
    assert pod_volume["persistentVolumeClaim"] == {"claimName": "astrago-volumes"}
    (mount,) = reader["containers"][0]["volumeMounts"]
    assert (mount["name"], mount["subPath"]) == (pod_volume["name"], "ws-vision/vol-imagenet")
    assert (mount["mountPath"], mount["readOnly"]) == ("/data", True)


async def test_start_twice_creates_nothing_twice(cluster: FakeCluster, backend: KubernetesBackend) -> None:
    spec = launch_spec(WorkloadKind.DISTRIBUTED, replicas=(replica(0, "gpu-1"), replica(1, "gpu-2")))
    await backend.start(spec)
    (job,) = await cluster.kubelet.list(JOBS)
    await backend.start(spec)
    assert [j["metadata"]["uid"] for j in await cluster.kubelet.list(JOBS)] == [job["metadata"]["uid"]]
    (service,) = await cluster.kubelet.list(SERVICES)
    assert service["metadata"]["ownerReferences"][0]["uid"] == job["metadata"]["uid"]


async def test_cancel_stops_every_replica(cluster: FakeCluster, backend: KubernetesBackend) -> None:
    spec = launch_spec(WorkloadKind.DISTRIBUTED, replicas=(replica(0, "gpu-1"), replica(1, "gpu-2")))
    async with watching(backend) as watched:
        await backend.start(spec)
        await started_pods(cluster)
        await watched.reaches("wl-1", S.RUNNING, replicas=2)
        await backend.stop("wl-1", grace_s=5, reason="cancelled by alice")
        stopped = await watched.reaches("wl-1", S.STOPPED, replicas=2)
    assert {o.reason for o in stopped} == {"cancelled by alice"}
    assert await cluster.kubelet.pods() == []
    (job,) = await cluster.kubelet.list(JOBS)  # foreground deletion: kept, marked, until the GC ran
    assert job["metadata"]["deletionTimestamp"]
    assert job["metadata"]["annotations"]["astrago.io/stop-reason"] == "cancelled by alice"
    await cluster.kubelet.collect_garbage()  # the cluster's GC follows the owner references
    assert await cluster.kubelet.list(JOBS) == []
    assert await cluster.kubelet.list(SERVICES) == []
    assert by_state(await backend.observe(), "wl-1") == [S.STOPPED, S.STOPPED]
    await backend.stop("wl-1", grace_s=5, reason="cancelled by alice")  # idempotent


async def test_preempted_service_stops_and_starts_again(
    cluster: FakeCluster, backend: KubernetesBackend
) -> None:
    spec = launch_spec(WorkloadKind.SERVICE, workload_id="svc", ports=(8000,))
    async with watching(backend) as watched:
        await backend.start(spec)
        await started_pods(cluster)
        await watched.reaches("svc", S.RUNNING)
        await backend.stop("svc", grace_s=30, reason="preempted for wl-9")
        (stopped,) = await watched.reaches("svc", S.STOPPED)
        assert stopped.reason == "preempted for wl-9"
        # requeued and admitted again at once: the old Deployment is still being deleted, so start
        # waits for it to go, then creates fresh objects under the same names
        restart = asyncio.create_task(backend.start(spec))
        await asyncio.sleep(0.05)
        assert not restart.done()
        await cluster.kubelet.collect_garbage()
        await asyncio.wait_for(restart, 10)
        await started_pods(cluster)
        await watched.reaches("svc", S.RUNNING)
    (deployment,) = await cluster.kubelet.list(DEPLOYMENTS)
    assert "astrago.io/stop-reason" not in deployment["metadata"].get("annotations", {})


async def test_a_restarted_backend_adopts_what_exists(
    cluster: FakeCluster, backend: KubernetesBackend, make_settings: Callable[..., Any]
) -> None:
    job = launch_spec(workload_id="job")
    notebook = launch_spec(WorkloadKind.INTERACTIVE, workload_id="nb", replicas=(replica(gpus=0),))
    await backend.start(job)
    await backend.start(notebook)
    await started_pods(cluster)
    for pod in await cluster.kubelet.pods():
        if pod["spec"].get("nodeName") and pod["status"]["phase"] == "Pending":
            await cluster.kubelet.run(pod["metadata"]["name"])
    before = {o["metadata"]["uid"] for path in (JOBS, SERVICES) for o in await cluster.kubelet.list(path)}
    pods_before = {p["metadata"]["uid"] for p in await cluster.kubelet.pods()}
    await backend.close()

    restarted = KubernetesBackend(make_settings())
    await restarted.open()
    try:
        observed = await restarted.observe()
        assert by_state(observed, "job") == [S.RUNNING]
        assert by_state(observed, "nb") == [S.STARTING]  # the kubelet has not started the notebook's pod
        await restarted.start(job)
        await restarted.start(notebook)
        assert await cluster.kubelet.reconcile() == []  # no new pods
        after = {o["metadata"]["uid"] for path in (JOBS, SERVICES) for o in await cluster.kubelet.list(path)}
        assert after == before
        assert {p["metadata"]["uid"] for p in await cluster.kubelet.pods()} == pods_before
    finally:
        await restarted.close()


async def test_a_restart_during_a_stop_still_reports_why(
    cluster: FakeCluster, backend: KubernetesBackend, make_settings: Callable[..., Any]
) -> None:
    await backend.start(launch_spec(replicas=(replica(0, "gpu-1"), replica(1, "gpu-2"))))
    await started_pods(cluster)
    await eventually(lambda: _states(backend, "wl-1", [S.RUNNING, S.RUNNING]))
    await backend.stop("wl-1", grace_s=30, reason="preempted for wl-7")
    await backend.close()  # the server dies before the cluster finished deleting

    restarted = KubernetesBackend(make_settings())
    await restarted.open()
    try:
        observed = [o for o in await restarted.observe() if o.workload_id == "wl-1"]
        assert [(o.state, o.reason) for o in observed] == [(S.STOPPED, "preempted for wl-7")] * 2
    finally:
        await restarted.close()


async def test_watch_expiry_relists_and_misses_nothing(
    cluster: FakeCluster, backend: KubernetesBackend
) -> None:
    async with watching(backend) as watched:
        await backend.start(launch_spec())
        (pod,) = await started_pods(cluster)
        await watched.reaches("wl-1", S.RUNNING)
        await cluster.api.expire_watches()  # etcd compacted: resuming from the old version answers 410
        await cluster.kubelet.finish(pod)  # happens while the watch is down
        await watched.reaches("wl-1", S.SUCCEEDED)
    assert cluster.api.gone_answers >= 1
    assert backend.pod_lists >= 2  # the initial list and the re-list after 410


async def test_a_dropped_watch_resumes_from_its_version(
    cluster: FakeCluster, backend: KubernetesBackend
) -> None:
    async with watching(backend) as watched:
        await backend.start(launch_spec())
        (pod,) = await started_pods(cluster)
        await watched.reaches("wl-1", S.RUNNING)
        await cluster.api.drop_watches()  # the server's watch timeout: streams end, history is kept
        await cluster.kubelet.finish(pod)
        await watched.reaches("wl-1", S.SUCCEEDED)
    assert backend.pod_lists == 1  # resumed from the last resourceVersion, no re-list needed
    assert cluster.api.gone_answers == 0


async def test_node_removal_loses_its_replicas(cluster: FakeCluster, backend: KubernetesBackend) -> None:
    async with watching(backend) as watched:
        await backend.start(launch_spec(replicas=(replica(node="gpu-2"),)))
        await started_pods(cluster)
        await watched.reaches("wl-1", S.RUNNING)
        await cluster.kubelet.remove_node("gpu-2")
        (lost,) = await watched.reaches("wl-1", S.LOST)
    assert lost.reason == "node gpu-2 is gone from the cluster"
    assert [node.name for node in await backend.inventory()] == ["gpu-1"]
    await cluster.kubelet.add_node("gpu-3", gpus=8)
    (_, added) = await eventually(lambda: _two(backend.inventory()))
    assert (added.name, len(added.devices)) == ("gpu-3", 8)


async def test_image_pull_errors_fail_with_a_clear_reason(
    cluster: FakeCluster, backend: KubernetesBackend
) -> None:
    spec = launch_spec(image="mpioperator/mpi-operator:0.5.0")
    async with watching(backend) as watched:
        await backend.start(spec)
        (pod,) = await started_pods(cluster, run=False)
        await cluster.kubelet.fail_image_pull(
            pod, 'failed to pull and unpack image "docker.io/mpioperator/mpi-operator:0.5.0": not found'
        )
        (failed,) = await watched.reaches("wl-1", S.FAILED)
    assert failed.reason == "image mpioperator/mpi-operator:0.5.0 not found in registry"


async def test_interactive_pod_and_its_service(cluster: FakeCluster, backend: KubernetesBackend) -> None:
    await backend.start(
        launch_spec(WorkloadKind.INTERACTIVE, image=None, command=(), replicas=(replica(gpus=0),))
    )
    (pod,) = await cluster.kubelet.pods()
    (service,) = await cluster.kubelet.list(SERVICES)
    assert pod["metadata"]["name"] == service["metadata"]["name"] == object_name("wl-1")
    assert service["metadata"]["ownerReferences"][0]["uid"] == pod["metadata"]["uid"]
    assert service["spec"]["ports"][0]["port"] == 8888
    await cluster.kubelet.run(pod["metadata"]["name"])
    await eventually(lambda: _states(backend, "wl-1", [S.RUNNING]))
    (endpoint,) = await backend.endpoints("wl-1")
    assert (endpoint.host, endpoint.port) == (f"{object_name('wl-1')}.astrago.svc", 8888)


async def test_a_previous_run_that_never_goes_away_is_reported(
    cluster: FakeCluster, backend: KubernetesBackend
) -> None:
    await backend.start(launch_spec())
    await started_pods(cluster)
    await backend.stop("wl-1", grace_s=0, reason="preempted")
    backend.previous_run_wait_s = 0.0  # the cluster's garbage collector never runs here
    with pytest.raises(
        BackendError, match=r"previous run of workload wl-1 \(Job ag-wl-1\) is still being deleted"
    ):
        await backend.start(launch_spec())


async def test_a_service_rolls_to_a_new_image(cluster: FakeCluster, backend: KubernetesBackend) -> None:
    await backend.start(launch_spec(WorkloadKind.SERVICE, image="team/api:1", ports=(8000,)))
    await backend.start(launch_spec(WorkloadKind.SERVICE, image="team/api:2", ports=(8000,)))
    (deployment,) = await cluster.kubelet.list(DEPLOYMENTS)
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "team/api:2"


async def test_mpi_needs_the_operator_then_runs(cluster: FakeCluster, backend: KubernetesBackend) -> None:
    spec = launch_spec(
        WorkloadKind.DISTRIBUTED,
        workload_id="mpi",
        replicas=(replica(0, "gpu-1", gpus=2), replica(1, "gpu-2", gpus=2)),
        command=("mpirun", "python", "train.py"),
        extra={"framework": "mpi"},
        volumes=(volume(), volume("weights", "/models", read_only=True)),
    )
    with pytest.raises(BackendError, match=r"install the MPI Operator v0\.5"):
        await backend.start(spec)
    assert await cluster.kubelet.list(CLAIMS) == []  # nothing half-created
    cluster.install_mpi_operator()
    async with watching(backend) as watched:
        await backend.start(spec)
        pods = await started_pods(cluster)
        await watched.reaches("mpi", S.RUNNING, replicas=2)
        launcher = next(p for p in pods if p.endswith("launcher"))
        await cluster.kubelet.finish(launcher)
        finished = await watched.reaches("mpi", S.SUCCEEDED, replicas=2)
    assert [o.node for o in finished] == ["gpu-1", "gpu-2"]
    assert len(await cluster.kubelet.list(MPIJOBS)) == 1


async def test_unknown_storage_class_is_refused_before_anything_is_created(
    cluster: FakeCluster, make_settings: Callable[..., Any]
) -> None:
    backend = KubernetesBackend(make_settings(storage_class="fast-nvme"))
    await backend.open()
    try:
        with pytest.raises(
            BackendError, match=r"StorageClass 'fast-nvme' does not exist: install a CSI driver"
        ):
            await backend.start(launch_spec(volumes=(volume(), volume("weights", "/models", read_only=True))))
        assert await cluster.kubelet.list(JOBS) == []
        assert await cluster.kubelet.list(CLAIMS) == []
        await backend.start(launch_spec(workload_id="no-volumes"))  # workloads without volumes still run
    finally:
        await backend.close()


async def test_a_failed_dependent_removes_its_root(cluster: FakeCluster, backend: KubernetesBackend) -> None:
    cluster.api.denied.add(("create", "services"))
    with pytest.raises(BackendError, match=r"create Service .* permission denied \(403\)"):
        await backend.start(launch_spec(WorkloadKind.INTERACTIVE, ports=(8888,), replicas=(replica(gpus=0),)))
    assert await cluster.kubelet.pods() == []


async def test_unreachable_api_server(tmp_path: Path, make_settings: Callable[..., Any]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    kubeconfig = write_kubeconfig(tmp_path / "dead-kubeconfig", f"http://127.0.0.1:{port}")
    backend = KubernetesBackend(make_settings(kubeconfig=str(kubeconfig)))
    with pytest.raises(
        BackendError, match=rf"cannot reach the Kubernetes API server at http://127.0.0.1:{port}"
    ):
        await backend.open()


async def test_missing_kubeconfig(make_settings: Callable[..., Any], tmp_path: Path) -> None:
    backend = KubernetesBackend(make_settings(kubeconfig=str(tmp_path / "absent")))
    with pytest.raises(BackendError, match="no usable Kubernetes configuration"):
        await backend.open()


async def test_missing_rbac_permissions_are_listed(
    cluster: FakeCluster, make_settings: Callable[..., Any]
) -> None:
    cluster.api.denied |= {("create", "jobs"), ("watch", "nodes"), ("get", "pods/log")}
    backend = KubernetesBackend(make_settings())
    with pytest.raises(BackendError) as failure:
        await backend.open()
    message = str(failure.value)
    assert "create jobs.batch" in message
    assert "watch nodes" in message
    assert "get pods/log" in message
    assert "docs/kubernetes.md" in message


async def test_an_api_server_that_cannot_list_nodes(
    cluster: FakeCluster, make_settings: Callable[..., Any]
) -> None:
    cluster.api.broken.add(("list", "nodes"))
    backend = KubernetesBackend(make_settings())
    with pytest.raises(
        BackendError, match=r"could not list nodes from .* 500: etcdserver: request timed out"
    ):
        await backend.open()


async def test_missing_namespace(make_settings: Callable[..., Any]) -> None:
    backend = KubernetesBackend(make_settings(namespace="ml"))
    expected = r"namespace 'ml' does not exist .*\(kubectl create namespace ml\)"
    with pytest.raises(BackendError, match=expected):
        await backend.open()


async def test_orphans_are_reported_and_cleaned_by_policy(
    cluster: FakeCluster, backend: KubernetesBackend
) -> None:
    await backend.start(launch_spec(workload_id="known"))
    await backend.start(launch_spec(WorkloadKind.SERVICE, workload_id="lost-in-crash"))
    reported = await backend.reconcile_orphans({"known"})
    assert [(o.workload_id, o.kind, o.deleted) for o in reported] == [("lost-in-crash", "Deployment", False)]
    assert len(await cluster.kubelet.list(DEPLOYMENTS)) == 1
    cleaned = await backend.reconcile_orphans({"known"}, OrphanPolicy.DELETE)
    assert [o.deleted for o in cleaned] == [True]
    assert await cluster.kubelet.list(DEPLOYMENTS) == []
    assert len(await cluster.kubelet.list(JOBS)) == 1


async def test_logs_are_served_and_kept_when_forgotten(
    cluster: FakeCluster, backend: KubernetesBackend
) -> None:
    await backend.start(launch_spec())
    (pod,) = await started_pods(cluster)
    cluster.api.pod_logs[pod] = "epoch 1 loss 0.9\nepoch 2 loss 0.5\n"
    await eventually(lambda: _states(backend, "wl-1", [S.RUNNING]))
    lines = [chunk async for chunk in backend.logs("wl-1", 0, follow=False)]
    assert b"".join(lines) == b"epoch 1 loss 0.9\nepoch 2 loss 0.5\n"
    async with watching(backend) as watched:
        await cluster.kubelet.finish(pod)
        await watched.reaches("wl-1", S.SUCCEEDED)
        await backend.forget("wl-1")
        assert await cluster.kubelet.list(JOBS) == []
        await eventually(lambda: _states(backend, "wl-1", []))
    assert watched.states("wl-1") == [S.SUCCEEDED]  # the deletions of a forgotten workload say nothing
    kept = [chunk async for chunk in backend.logs("wl-1", 0, follow=False)]
    assert b"".join(kept) == b"epoch 1 loss 0.9\nepoch 2 loss 0.5\n"
    with pytest.raises(BackendError, match="has no pod"):
        _ = [chunk async for chunk in backend.logs("other", 0, follow=False)]


async def test_exec_runs_a_command_in_a_replica(cluster: FakeCluster, backend: KubernetesBackend) -> None:
    await backend.start(launch_spec())
    (pod,) = await started_pods(cluster)
    calls: list[tuple[str, list[str]]] = []

    def handler(name: str, argv: list[str]) -> tuple[int, str, str]:
        calls.append((name, argv))
        return (0, "GPU 0: NVIDIA A100\n", "") if argv[0] == "nvidia-smi" else (2, "", "no such file\n")

    cluster.api.exec_handler = handler
    await eventually(lambda: _states(backend, "wl-1", [S.RUNNING]))
    ok = await backend.exec("wl-1", 0, ["nvidia-smi", "-L"])
    assert (ok.exit_code, ok.stdout) == (0, "GPU 0: NVIDIA A100\n")
    failed = await backend.exec("wl-1", 0, ["cat", "/missing"])
    assert (failed.exit_code, failed.stderr) == (2, "no such file\n")
    assert calls[0] == (pod, ["nvidia-smi", "-L"])


async def test_following_logs_waits_for_the_container_to_start(
    cluster: FakeCluster, backend: KubernetesBackend
) -> None:
    await backend.start(launch_spec())
    (pod,) = await started_pods(cluster, run=False)
    cluster.api.pod_logs[pod] = "hello from rank 0\n"
    await eventually(lambda: _states(backend, "wl-1", [S.STARTING]))
    follower = asyncio.create_task(_read_all(backend.logs("wl-1", 0, follow=True)))
    await asyncio.sleep(0.05)
    assert not follower.done()  # nothing to read while the pod is Pending
    await cluster.kubelet.run(pod)
    assert await asyncio.wait_for(follower, 10) == b"hello from rank 0\n"


async def _read_all(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in chunks])


async def test_gpu_shares_follow_the_nodes_time_slicing(
    cluster: FakeCluster, backend: KubernetesBackend
) -> None:
    await cluster.kubelet.add_node(
        "share-1", gpus=2, product="NVIDIA-L40S-SHARED", extra_allocatable={"nvidia.com/gpu.shared": "20"}
    )
    await eventually(lambda: _has_node(backend, "share-1"))
    await backend.start(launch_spec(replicas=(replica(node="share-1", gpus=0, gpu_milli=500),)))
    (job,) = await cluster.kubelet.list(JOBS)
    limits = job["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits["nvidia.com/gpu.shared"] == "5"  # half a GPU of 10 time-sliced shares per GPU


async def _has_node(backend: KubernetesBackend, name: str) -> bool:
    return name in [node.name for node in await backend.inventory()]


async def test_a_service_rolls_to_a_new_revision_through_its_deployment(
    cluster: FakeCluster, backend: KubernetesBackend
) -> None:
    """Emulated cluster (kmock): the Deployment's template is patched; Kubernetes' RollingUpdate (maxSurge 1,
    maxUnavailable 0, readiness probes) replaces the pods."""
    service = launch_spec(
        WorkloadKind.SERVICE, image="team/api:1", ports=(8000,), extra={"health_path": "/healthz"}
    )
    await backend.start(service)
    (deployment,) = await cluster.kubelet.list(DEPLOYMENTS)
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"] == {
        "httpGet": {"path": "/healthz", "port": 8000},
        "periodSeconds": 5,
        "failureThreshold": 3,
    }
    assert {"name": "PORT", "value": "8000"} in container["env"]
    rolled = dataclasses.replace(service, image="team/api:2", env=(("VERSION", "2"),), revision=1)
    await backend.roll(rolled)
    await backend.roll(rolled)  # idempotent
    (deployment,) = await cluster.kubelet.list(DEPLOYMENTS)
    template = deployment["spec"]["template"]
    assert template["metadata"]["annotations"]["astrago.io/revision"] == "1"
    assert template["spec"]["containers"][0]["image"] == "team/api:2"
    assert {"name": "VERSION", "value": "2"} in template["spec"]["containers"][0]["env"]
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}


async def test_a_code_bundle_reaches_the_pods_with_a_credential_for_it_alone(
    cluster: FakeCluster, make_settings: Callable[..., Any]
) -> None:
    """The Job the emulated API server stores (and the pod made from it) fetches the bundle from the
    internal URL with a credential that the API's key accepts for this bundle and workload only."""
    settings = make_settings(
        internal_url="http://astrago-core.astrago:8080/", code_credential_key="k", code_credential_ttl_hours=2
    )
    backend = KubernetesBackend(settings)
    await backend.open()
    try:
        await backend.start(launch_spec(workload_id="coded", code_bundle="bundle1"))
        await started_pods(cluster, run=False)
    finally:
        await backend.close()
    (job,) = await cluster.kubelet.list(JOBS)
    for pod_spec in (job["spec"]["template"]["spec"], (await cluster.kubelet.pods())[0]["spec"]):
        (fetcher,) = pod_spec["initContainers"]
        env = {item["name"]: item["value"] for item in fetcher["env"]}
        assert (
            env["ASTRAGO_CODE_URL"] == "http://astrago-core.astrago:8080/api/v1/code-bundles/bundle1/archive"
        )
        granted = code_credentials.verify(
            code_credentials.server_key(settings), "bundle1", env["ASTRAGO_CODE_CREDENTIAL"]
        )
        assert granted.workload_id == "coded"
        assert 7100 < granted.expires_at - time.time() <= 7200
        with pytest.raises(code_credentials.InvalidCodeCredential):
            code_credentials.verify(
                code_credentials.server_key(settings), "bundle2", env["ASTRAGO_CODE_CREDENTIAL"]
            )
        assert pod_spec["containers"][0]["workingDir"] == CODE_DIR


async def test_a_code_bundle_without_an_internal_url_creates_nothing(
    cluster: FakeCluster, backend: KubernetesBackend
) -> None:
    with pytest.raises(BackendError, match=r"set internal_url \(ASTRAGO_INTERNAL_URL\)"):
        await backend.start(launch_spec(workload_id="coded", code_bundle="bundle1"))
    assert await cluster.kubelet.list(JOBS) == []


async def test_a_service_with_code_rolls_its_fetcher_too(
    cluster: FakeCluster, make_settings: Callable[..., Any]
) -> None:
    """On the emulated API: the new pods fetch the code with the new image and a fresh credential."""
    settings = make_settings(internal_url="http://core:8080", code_credential_key="k")
    backend = KubernetesBackend(settings)
    await backend.open()
    try:
        for image in ("team/api:1", "team/api:2"):
            await backend.start(
                launch_spec(WorkloadKind.SERVICE, image=image, ports=(8000,), code_bundle="bundle1")
            )
    finally:
        await backend.close()
    (deployment,) = await cluster.kubelet.list(DEPLOYMENTS)
    (fetcher,) = deployment["spec"]["template"]["spec"]["initContainers"]
    assert fetcher["image"] == "team/api:2"
    credential = {item["name"]: item["value"] for item in fetcher["env"]}["ASTRAGO_CODE_CREDENTIAL"]
    key = code_credentials.server_key(settings)
    assert code_credentials.verify(key, "bundle1", credential).workload_id == "wl-1"
