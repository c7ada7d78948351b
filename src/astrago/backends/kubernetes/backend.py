"""The Kubernetes backend: AstraGo workloads as Jobs, MPIJobs, Pods and Deployments on a cluster.

Desired state lives in AstraGo's database; this backend turns a LaunchSpec into Kubernetes objects,
reports what the cluster does with them (from a pod and a node informer), and never creates anything
twice: object names derive from the workload id, a create that finds the object (409) adopts it, and a
restarted backend rebuilds its view by listing AstraGo's labels."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Collection, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2
from httpx2.websockets import HTTPXWSException
from lightkube import ALL_NS, AsyncClient, KubeConfig
from lightkube.core.client import LabelSelector
from lightkube.core.exceptions import ConfigError
from lightkube.resources.core_v1 import Node, Pod
from lightkube.types import CascadeType, PatchType

from astrago.auth import code_credentials
from astrago.backends.base import (
    BackendCapabilities,
    BackendError,
    Capability,
    Endpoint,
    ExecRequest,
    ExecSession,
    LaunchSpec,
    NodeInventory,
    Orphan,
    OrphanPolicy,
    ReplicaObservation,
)
from astrago.backends.kubernetes import manifests as mf
from astrago.backends.kubernetes import naming, preflight
from astrago.backends.kubernetes.errors import api_error, describe, is_conflict, is_not_found
from astrago.backends.kubernetes.exec_session import EXEC_SUBPROTOCOL, OneShotExecSession, TtyExecSession
from astrago.backends.kubernetes.informer import Informer
from astrago.backends.kubernetes.inventory import (
    NOTHING_HELD,
    Held,
    node_inventory,
    pod_holds,
    shared_units_per_gpu,
)
from astrago.backends.kubernetes.resources import ROOT_KINDS, MPIJob, resource_for
from astrago.backends.kubernetes.status import (
    LAUNCHER,
    WorkloadObjects,
    assign_indices,
    has_been_ready,
    is_ready,
    observe_workload,
    pod_replica_index,
    readiness_deadline,
    readiness_timeout_of,
    replicas_of,
    workload_id_of,
)
from astrago.config import Settings
from astrago.domain.enums import ReplicaState

log = logging.getLogger(__name__)

Manifest = dict[str, Any]
_ENDED_PHASES = ("Succeeded", "Failed")
_DELETION_POLL_S = 0.5
_MANAGED: LabelSelector = dict(naming.MANAGED_SELECTOR)
REVISION_ANNOTATION = "astrago.io/revision"
UNREADY_LOG_LINES = 20  # log lines in the reason of a replica that never became ready
TERMINAL_PING_S = 20.0  # keeps an idle terminal's connection alive through proxies and load balancers


CAPABILITIES = BackendCapabilities(
    backend="kubernetes",
    supported=frozenset(
        {
            Capability.IMAGES,
            Capability.PORTS,
            Capability.VOLUMES,
            Capability.INTERACTIVE,
            Capability.SERVICES,
            Capability.DISTRIBUTED,
            Capability.MPI,
            Capability.EXEC,
            Capability.TTY,
            Capability.ENDPOINTS,
            Capability.ORPHAN_CLEANUP,
            Capability.NODE_PORTS,
            Capability.ROLLING_UPDATE,
        }
    ),
    options=frozenset(
        {
            "framework",
            "mpi_slots",
            "expose",
            "readiness_timeout",
            "health_path",
            "health_interval",
            "health_threshold",
        }
    ),
)


@dataclass(frozen=True, slots=True)
class ExecResult:
    exit_code: int
    stdout: str
    stderr: str


@dataclass(slots=True)
class _Stop:
    reason: str
    replicas: int


class KubernetesBackend:
    name = "kubernetes"
    capabilities = CAPABILITIES
    # How long `start` waits for a previous run's objects to finish deleting (foreground deletion ends
    # shortly after the pods are gone, which is when the replicas were reported STOPPED).
    previous_run_wait_s = 120.0
    sync_timeout_s = 30.0  # how long `open` waits for the first list of nodes and pods

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._namespace = settings.namespace
        self._client: AsyncClient | None = None
        self._server = "?"
        self._facts = preflight.ClusterFacts(mpi_operator=False, storage_class=None)
        self._pods: Informer | None = None
        self._nodes: Informer | None = None
        self._all_pods: Informer | None = None  # every pod of the cluster, for what others hold on nodes
        self._tasks: list[asyncio.Task[None]] = []
        self._subscribers: list[asyncio.Queue[ReplicaObservation]] = []
        self._last: dict[tuple[str, int], ReplicaObservation] = {}
        self._stopping: dict[str, _Stop] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._changed = asyncio.Event()  # set and replaced on every pod change; lets readers wait for one
        self._forgotten: set[str] = set()  # forgotten workloads whose pods are still being deleted
        # the pod cache indexed by workload, so one pod event costs one workload's pods, not all pods
        self._pods_by_workload: dict[str, dict[str, Manifest]] = {}
        self._marking: set[str] = set()  # pods being marked as ready once (READY_AT_ANNOTATION)
        self._background: set[asyncio.Task[None]] = set()
        self._readiness_timers: dict[str, asyncio.TimerHandle] = {}
        self._unready_tails: dict[str, str] = {}  # pod name → last log lines, once past its deadline

    # ------------------------------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        client = self._connect()
        try:
            self._facts = await self._inspect(client)
        except BaseException:
            await client.close()
            raise
        self._client = client
        self._pods_by_workload.clear()  # rebuilt by the pod informer's first list
        self._nodes = Informer(client, Node, namespace=None, on_change=self._node_changed)
        self._pods = Informer(
            client,
            Pod,
            namespace=self._namespace,
            labels=naming.MANAGED_SELECTOR,
            on_change=self._pod_changed,
        )
        self._all_pods = Informer(client, Pod, namespace=ALL_NS, on_change=_ignore_change)
        informers = (self._nodes, self._pods, self._all_pods)
        self._tasks = [asyncio.create_task(informer.run()) for informer in informers]
        await self._await_first_lists(*informers)

    async def _await_first_lists(self, *informers: Informer) -> None:
        """Serve nothing before the caches are filled; a first list that fails fails `open` with its cause."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(i.tried.wait() for i in informers)), self.sync_timeout_s)
        unsynced = [informer for informer in informers if not informer.synced.is_set()]
        if not unsynced:
            return
        error = next((i.last_error for i in unsynced if i.last_error), None)
        await self.close()
        kinds = " and ".join(f"{i.kind.lower()}s" for i in unsynced)
        cause = (
            describe(error, f"list {kinds}", self._server)
            if error
            else f"no answer in {self.sync_timeout_s:.0f}s"
        )
        raise BackendError(f"could not list {kinds} from {self._server}: {cause}")

    async def _inspect(self, client: AsyncClient) -> preflight.ClusterFacts:
        """Refuse a cluster AstraGo cannot work with; note the optional parts it has."""
        try:
            await preflight.check_reachable(client, self._namespace, self._server)
            missing = await preflight.missing_permissions(
                client, self._namespace, preflight.REQUIRED_PERMISSIONS
            )
            if missing:
                raise preflight.permission_error(missing, self._namespace)
            mpi = await preflight.serves_mpijob(client, self._namespace)
            missing_mpi: tuple[preflight.Permission, ...] = ()
            if mpi:
                missing_mpi = tuple(
                    await preflight.missing_permissions(client, self._namespace, preflight.MPI_PERMISSIONS)
                )
            storage = await preflight.storage_class_exists(client, self._settings.storage_class)
        except httpx2.HTTPError as exc:
            raise api_error(exc, "check the cluster", self._server) from exc
        if storage is False:
            refusal = preflight.storage_class_error(self._settings.storage_class)
            log.warning("%s; workloads with volumes will be refused", refusal)
        return preflight.ClusterFacts(mpi, storage, missing_mpi)

    async def close(self) -> None:
        for timer in self._readiness_timers.values():
            timer.cancel()
        self._readiness_timers.clear()
        for task in [*self._tasks, *self._background]:
            task.cancel()
        for task in [*self._tasks, *self._background]:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._client is not None:
            await self._client.close()
            self._client = None

    def _connect(self) -> AsyncClient:
        try:
            if self._settings.kubeconfig:
                config = KubeConfig.from_file(self._settings.kubeconfig)
            else:
                config = KubeConfig.from_env()  # in-cluster service account, then $KUBECONFIG, ~/.kube/config
            single = config.get()
            if single is None:
                raise ConfigError("the configuration names no current context")
        except ConfigError as exc:
            raise BackendError(
                f"no usable Kubernetes configuration: {exc}. Pass --kubeconfig PATH (ASTRAGO_KUBECONFIG) "
                "or run AstraGo in a pod with a service account"
            ) from exc
        self._server = single.cluster.server
        return AsyncClient(config=single, namespace=self._namespace, field_manager="astrago")

    @property
    def client(self) -> AsyncClient:
        if self._client is None:
            raise BackendError("the Kubernetes backend is not open")
        return self._client

    @property
    def cluster_facts(self) -> preflight.ClusterFacts:
        return self._facts

    @property
    def pod_lists(self) -> int:
        """How often the pod cache was listed: once at open, once more after every expired watch (410)."""
        return self._pods.lists if self._pods else 0

    # ------------------------------------------------------------------------------------ inventory

    async def inventory(self) -> list[NodeInventory]:
        nodes = self._nodes.objects.values() if self._nodes else ()
        shared = self._settings.shared_gpu_resource
        held = self._held_by_others()
        return sorted(
            (
                node_inventory(node, shared, held.get(node["metadata"]["name"], NOTHING_HELD))
                for node in nodes
            ),
            key=lambda node: node.name,
        )

    def _held_by_others(self) -> dict[str, Held]:
        """Per node, the requests of pods this AstraGo did not create (other tools, other namespaces)."""
        held: dict[str, Held] = {}
        for pod in self._all_pods.objects.values() if self._all_pods else ():
            if _is_managed(pod) and (pod.get("metadata") or {}).get("namespace") == self._namespace:
                continue
            holding = pod_holds(pod)
            if holding is not None:
                node, requests = holding
                held[node] = held.get(node, NOTHING_HELD) + requests
        return held

    def _node_names(self) -> set[str]:
        return set(self._nodes.objects) if self._nodes else set()

    # ---------------------------------------------------------------------------------------- start

    async def start(self, spec: LaunchSpec) -> None:
        async with self._lock(spec.workload_id):
            built = mf.build_manifests(spec, self._manifest_options(spec))
            await self._check_prerequisites(spec, built)
            for claim in built.volume_claims:
                await self._create(claim)
            root, created = await self._create_or_adopt(built.root)
            try:
                for dependent in built.dependents:
                    await self._create(_owned_by(dependent, built.root, root))
            except BackendError:
                if created:  # leave nothing half-created: the root takes its pods with it
                    await self._delete(built.root["kind"], root["metadata"]["name"], grace_s=0)
                raise
            self._stopping.pop(spec.workload_id, None)

    def _manifest_options(self, spec: LaunchSpec) -> mf.ManifestOptions:
        shared = self._settings.shared_gpu_resource
        nodes = self._nodes.objects if self._nodes else {}
        sharing = {replica.node for replica in spec.replicas if 0 < replica.gpu_milli < 1000}
        return mf.ManifestOptions(
            namespace=self._namespace,
            storage_class=self._settings.storage_class,
            volumes_claim=self._settings.volumes_claim,
            image_registry=self._settings.image_registry,
            image_pull_secrets=tuple(self._settings.image_pull_secrets),
            shared_gpu_resource=shared,
            shared_units_per_gpu={
                name: shared_units_per_gpu(node_inventory(nodes[name], shared), shared)
                for name in sharing
                if name in nodes
            },
            code_download=self._code_download(spec),
        )

    def _code_download(self, spec: LaunchSpec) -> mf.CodeDownload | None:
        """Where and with what the workload's pods fetch its code bundle: a credential for that bundle and
        this workload only, expiring after code_credential_ttl_hours (and refused once the workload ends)."""
        base = self._settings.internal_url
        if not spec.code_bundle or not base:
            return None
        expires_at = int(time.time() + self._settings.code_credential_ttl_hours * 3600)
        credential = code_credentials.issue(
            code_credentials.server_key(self._settings), spec.code_bundle, spec.workload_id, expires_at
        )
        return mf.CodeDownload(
            url=f"{base.rstrip('/')}/api/v1/code-bundles/{spec.code_bundle}/archive",
            credential=credential,
            image=self._settings.code_fetch_image,
        )

    async def _check_prerequisites(self, spec: LaunchSpec, built: mf.WorkloadManifests) -> None:
        """Everything that would fail half-way is checked before the first object is created."""
        if built.root["kind"] == "MPIJob":
            if not self._facts.mpi_operator:  # maybe installed since open(): look again before refusing
                mpi = await preflight.serves_mpijob(self.client, self._namespace)
                self._facts = preflight.ClusterFacts(
                    mpi, self._facts.storage_class, self._facts.missing_mpi_permissions
                )
            if not self._facts.mpi_operator:
                raise BackendError(f"cannot start {spec.name!r}: {preflight.MPI_OPERATOR_HINT}")
            if self._facts.missing_mpi_permissions:
                raise preflight.permission_error(list(self._facts.missing_mpi_permissions), self._namespace)
        if built.volume_claims and self._facts.storage_class is not True:
            exists = await preflight.storage_class_exists(self.client, self._settings.storage_class)
            if exists is False:
                missing = preflight.storage_class_error(self._settings.storage_class)
                raise BackendError(f"cannot start {spec.name!r}: {missing}")
            self._facts = preflight.ClusterFacts(
                self._facts.mpi_operator, exists, self._facts.missing_mpi_permissions
            )

    async def _create_or_adopt(self, manifest: Manifest) -> tuple[Manifest, bool]:
        kind, name = manifest["kind"], manifest["metadata"]["name"]
        created = await self._create(manifest)
        if created is not None:
            return created, True
        existing = await self._get(kind, name)
        if existing is None:  # deleted between our create and get: let the caller retry
            raise BackendError(f"{kind} {name} vanished while AstraGo adopted it; try again")
        wanted = manifest["metadata"]["annotations"][naming.WORKLOAD_ID_ANNOTATION]
        if workload_id_of(existing) != wanted:
            raise BackendError(
                f"{kind} {name} (namespace {self._namespace}) exists but is not workload {wanted}'s"
            )
        if (existing.get("metadata") or {}).get("deletionTimestamp"):
            # A preempted workload admitted again reuses its names: let the old objects finish going.
            await self._await_deleted(kind, name, wanted)
            return await self._create_or_adopt(manifest)
        if kind == "Deployment":
            await self._roll_image(manifest, existing)
        return existing, False

    async def _await_deleted(self, kind: str, name: str, workload_id: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.previous_run_wait_s
        while await self._get(kind, name) is not None:
            if loop.time() >= deadline:
                raise BackendError(
                    f"the previous run of workload {workload_id} ({kind} {name}) is still being deleted "
                    f"after {self.previous_run_wait_s:.0f}s; check its pods (kubectl -n {self._namespace} "
                    f"get pods -l {naming.WORKLOAD_LABEL}={naming.label_value(workload_id)})"
                )
            await self._changed_or(_DELETION_POLL_S)

    async def _changed_or(self, timeout_s: float) -> None:
        """Wait for the next pod change, or `timeout_s`, whichever comes first."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout_s)

    async def _roll_image(self, wanted: Manifest, existing: Manifest) -> None:
        """A service started again with another image rolls its pods over to it (RollingUpdate)."""
        image = wanted["spec"]["template"]["spec"]["containers"][0]["image"]
        containers = existing["spec"]["template"]["spec"]["containers"]
        if containers[0].get("image") == image:
            return
        template: Manifest = {"containers": [{"name": containers[0]["name"], "image": image}]}
        if "initContainers" in wanted["spec"]["template"]["spec"]:
            # The new pods fetch the code with a fresh credential (and the new image, when it is theirs).
            template["initContainers"] = wanted["spec"]["template"]["spec"]["initContainers"]
        patch = {"spec": {"template": {"spec": template}}}
        try:
            await self.client.patch(
                resource_for("Deployment"), existing["metadata"]["name"], patch, namespace=self._namespace
            )
        except httpx2.HTTPError as exc:
            raise api_error(
                exc, f"update the image of Deployment {existing['metadata']['name']}", self._server
            ) from exc

    async def _create(self, manifest: Manifest) -> Manifest | None:
        """Create the object; None when it exists already (so a repeated start creates nothing twice)."""
        kind, name = manifest["kind"], manifest["metadata"]["name"]
        resource = resource_for(kind)
        try:
            created = await self.client.create(resource.from_dict(manifest))
        except httpx2.HTTPError as exc:
            if is_conflict(exc):
                return None
            if kind == "MPIJob" and is_not_found(exc):
                raise BackendError(preflight.MPI_OPERATOR_HINT) from exc
            raise api_error(
                exc, f"create {kind} {name} in namespace {self._namespace}", self._server
            ) from exc
        result: Manifest = created.to_dict()
        return result

    async def _get(self, kind: str, name: str) -> Manifest | None:
        if kind == "MPIJob" and not self._facts.mpi_operator:
            return None
        try:
            obj = await self.client.get(resource_for(kind), name, namespace=self._namespace)
        except httpx2.HTTPError as exc:
            if is_not_found(exc):
                return None
            raise api_error(exc, f"read {kind} {name}", self._server) from exc
        result: Manifest = obj.to_dict()
        return result

    # ----------------------------------------------------------------------------------------- stop

    async def stop(self, workload_id: str, grace_s: float, reason: str) -> None:
        async with self._lock(workload_id):
            name = naming.object_name(workload_id)
            roots = await self._roots_of(workload_id)
            pods = self._pods_of(workload_id)
            replicas = max([replicas_of(obj) for _, obj in roots] + [replicas_of(pod) for pod in pods] + [0])
            self._stopping[workload_id] = _Stop(reason, replicas)
            for kind, _ in roots:
                await self._annotate_stop(kind, name, reason)
                # Foreground: the root stays, marked, until its pods are gone, so a restarted backend
                # still knows this workload is being stopped and why.
                await self._delete(kind, name, grace_s=grace_s, cascade=CascadeType.FOREGROUND)
            for pod in pods:
                if pod["metadata"]["name"] != name or not roots:
                    await self._delete("Pod", pod["metadata"]["name"], grace_s=grace_s)
            self._publish(workload_id)

    async def _roots_of(self, workload_id: str) -> list[tuple[str, Manifest]]:
        """The workload's root objects by kind (one, unless a name was reused across kinds)."""
        name = naming.object_name(workload_id)
        found = []
        for kind in ROOT_KINDS:
            root = await self._get(kind, name)
            if root is not None and workload_id_of(root) == workload_id:
                found.append((kind, root))
        return found

    async def _annotate_stop(self, kind: str, name: str, reason: str) -> None:
        patch = {"metadata": {"annotations": {naming.STOP_REASON_ANNOTATION: reason}}}
        try:
            await self.client.patch(
                resource_for(kind), name, patch, namespace=self._namespace, patch_type=PatchType.MERGE
            )
        except httpx2.HTTPError as exc:
            if not is_not_found(exc):
                raise api_error(exc, f"mark {kind} {name} as stopping", self._server) from exc

    async def _delete(
        self, kind: str, name: str, *, grace_s: float, cascade: CascadeType = CascadeType.BACKGROUND
    ) -> None:
        try:
            await self.client.delete(
                resource_for(kind),
                name,
                namespace=self._namespace,
                grace_period=int(grace_s),
                cascade=cascade,
            )
        except httpx2.HTTPError as exc:
            if not is_not_found(exc):
                raise api_error(exc, f"delete {kind} {name}", self._server) from exc

    # -------------------------------------------------------------------------------------- observe

    async def observe(self) -> list[ReplicaObservation]:
        workloads = await self._workloads()
        await self._read_unready_tails([pod for objects in workloads.values() for pod in objects.pods])
        nodes = self._node_names()
        observations: list[ReplicaObservation] = []
        for workload_id, objects in sorted(workloads.items()):
            stop = self._stopping.get(workload_id)
            reason = stop.reason if stop else None
            observations.extend(
                observe_workload(objects, nodes, reason, now=time.time(), log_tails=self._unready_tails)
            )
        for workload_id, stop in self._stopping.items():
            if workload_id not in workloads:  # fully gone: it stopped
                observations.extend(
                    ReplicaObservation(workload_id, index, ReplicaState.STOPPED, reason=stop.reason)
                    for index in range(stop.replicas)
                )
        for observation in observations:
            self._last[(observation.workload_id, observation.replica_index)] = observation
        return observations

    async def _roots(self) -> list[Manifest]:
        roots: list[Manifest] = []
        for kind, resource in ROOT_KINDS.items():
            if kind == "Pod" or (resource is MPIJob and not self._facts.mpi_operator):
                continue  # root pods are in the pod informer's cache already
            try:
                async for obj in self.client.list(resource, namespace=self._namespace, labels=_MANAGED):
                    data: Manifest = obj.to_dict()
                    data.setdefault("kind", kind)
                    if _is_managed(data):
                        roots.append(data)
            except httpx2.HTTPError as exc:
                raise api_error(exc, f"list {kind}s in namespace {self._namespace}", self._server) from exc
        pods = self._pods.objects.values() if self._pods else ()
        roots.extend({**pod, "kind": "Pod"} for pod in pods if _role(pod) == "root")
        return roots

    async def _workloads(self) -> dict[str, WorkloadObjects]:
        workloads: dict[str, WorkloadObjects] = {}
        for root in await self._roots():
            workload_id = workload_id_of(root)
            if workload_id:
                workloads[workload_id] = WorkloadObjects(workload_id, replicas_of(root), root=root)
        for pod in self._pods.objects.values() if self._pods else ():
            workload_id = workload_id_of(pod)
            if not workload_id:
                continue
            objects = workloads.setdefault(workload_id, WorkloadObjects(workload_id, replicas_of(pod)))
            objects.pods.append(pod)
        return workloads

    def _pods_of(self, workload_id: str) -> list[Manifest]:
        return list(self._pods_by_workload.get(workload_id, {}).values())

    # ---------------------------------------------------------------------------------------- watch

    async def watch(self) -> AsyncIterator[ReplicaObservation]:
        queue: asyncio.Queue[ReplicaObservation] = asyncio.Queue()
        self._subscribers.append(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._subscribers.remove(queue)

    def _pod_changed(self, old: Manifest | None, new: Manifest | None) -> None:
        self._changed.set()
        self._changed = asyncio.Event()
        workload_id = workload_id_of(new or old or {})
        if not workload_id:
            return
        pods = self._pods_by_workload.setdefault(workload_id, {})
        if new is not None:
            pods[new["metadata"]["name"]] = new
            self._mark_if_ready(new)
        elif old is not None:
            pods.pop(old["metadata"]["name"], None)
            self._unready_tails.pop(old["metadata"]["name"], None)
            if not pods:
                del self._pods_by_workload[workload_id]
        if workload_id in self._forgotten:  # its objects are going away on our own request
            if not self._pods_of(workload_id):
                self._forgotten.discard(workload_id)
            return
        if new is None and _phase(old) in _ENDED_PHASES and workload_id not in self._stopping:
            return  # a finished pod removed (e.g. by a TTL): its end was reported already
        self._publish(workload_id, deleted=None if new is not None else old)

    def _mark_if_ready(self, pod: Manifest) -> None:
        """Record on the pod that it passed its readiness probe once: from then on it is a running replica
        (a later failed probe only takes it out of its Service), also for a server started later."""
        name = pod["metadata"]["name"]
        if not is_ready(pod) or has_been_ready(pod) or readiness_timeout_of(pod) is None:
            return
        if name in self._marking:
            return
        self._marking.add(name)
        self._in_background(self._annotate_ready(name))

    def _in_background(self, work: Coroutine[None, None, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _annotate_ready(self, name: str) -> None:
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        patch = {"metadata": {"annotations": {naming.READY_AT_ANNOTATION: stamp}}}
        try:
            await self.client.patch(Pod, name, patch, namespace=self._namespace, patch_type=PatchType.MERGE)
        except httpx2.HTTPError as exc:
            # Until marked, the pod counts as running only while its probe passes; the next ready
            # report tries again.
            log.warning("could not mark pod %s as ready: %s", name, describe(exc, "patch pod", self._server))
        finally:
            self._marking.discard(name)

    def _recheck_readiness_at(self, workload_id: str, pods: list[Manifest]) -> None:
        """A replica still waiting for its readiness probe fails at its deadline even if nothing else
        changes by then: its workload is looked at again at that moment."""
        deadlines = [d for d in (readiness_deadline(pod) for pod in pods) if d is not None]
        previous = self._readiness_timers.pop(workload_id, None)
        if previous is not None:
            previous.cancel()
        if deadlines:
            delay = max(0.0, min(deadlines) - time.time()) + 0.05
            loop = asyncio.get_running_loop()
            self._readiness_timers[workload_id] = loop.call_later(delay, self._fail_unready, workload_id)

    def _fail_unready(self, workload_id: str) -> None:
        self._readiness_timers.pop(workload_id, None)
        self._in_background(self._publish_with_tails(workload_id))

    async def _publish_with_tails(self, workload_id: str) -> None:
        await self._read_unready_tails(self._pods_of(workload_id))
        self._publish(workload_id)

    async def _read_unready_tails(self, pods: list[Manifest]) -> None:
        """The last log lines of each running pod past its readiness deadline, for its failure's reason
        (as on the local backend); a log that cannot be read leaves the reason without them."""
        now = time.time()
        for pod in pods:
            name = pod["metadata"]["name"]
            deadline = readiness_deadline(pod)
            if deadline is None or deadline > now or name in self._unready_tails:
                continue
            lines: list[str] = []
            try:
                stream = self.client.log(name, namespace=self._namespace, tail_lines=UNREADY_LOG_LINES)
                async for line in stream:
                    lines.append(line)
            except httpx2.HTTPError as exc:
                log.info(
                    "no log lines for %s: %s",
                    name,
                    describe(exc, f"read the log of pod {name}", self._server),
                )
            self._unready_tails[name] = "".join(lines)

    def _node_changed(self, old: Manifest | None, new: Manifest | None) -> None:
        if new is not None:
            return
        node = (old or {}).get("metadata", {}).get("name")
        pods = self._pods.objects.values() if self._pods else ()
        affected = {workload_id_of(pod) for pod in pods if (pod.get("spec") or {}).get("nodeName") == node}
        for workload_id in sorted(filter(None, affected)):
            self._publish(workload_id)

    def _publish(self, workload_id: str, deleted: Manifest | None = None) -> None:
        """Push the workload's replicas whose observed state changed to every watcher."""
        pods = self._pods_of(workload_id)
        stop = self._stopping.get(workload_id)
        replicas = max(
            [replicas_of(pod) for pod in pods] + [stop.replicas if stop else 0, 1 if deleted else 0]
        )
        if deleted is not None:
            replicas = max(replicas, replicas_of(deleted))
        # Between events only the pods are cached; a missing pod of a live workload is being (re)created.
        root: Manifest | None = None if stop else {"metadata": {}}
        objects = WorkloadObjects(workload_id, replicas, root=root, pods=pods)
        nodes = self._node_names()
        self._recheck_readiness_at(workload_id, pods)
        reason = stop.reason if stop else None
        observed = observe_workload(objects, nodes, reason, now=time.time(), log_tails=self._unready_tails)
        for observation in observed:
            if deleted is not None and not stop:
                observation = _after_deletion(observation, deleted, nodes)
            key = (workload_id, observation.replica_index)
            if _same(self._last.get(key), observation):
                continue
            self._last[key] = observation
            for queue in self._subscribers:
                queue.put_nowait(observation)

    # ----------------------------------------------------------------------------------- logs, exec

    async def logs(
        self, workload_id: str, replica_index: int, follow: bool, offset: int = 0
    ) -> AsyncIterator[bytes]:
        """The pod's log from byte `offset` (the API has no byte offsets: the bytes before it are skipped)."""
        skip = offset
        async for chunk in self._logs_from_start(workload_id, replica_index, follow):
            if skip >= len(chunk):
                skip -= len(chunk)
                continue
            yield chunk[skip:]
            skip = 0

    async def _logs_from_start(
        self, workload_id: str, replica_index: int, follow: bool
    ) -> AsyncIterator[bytes]:
        pod = self._pod_for(workload_id, replica_index)
        if pod is None:
            archived = self._archive_path(workload_id, replica_index)
            if archived.exists():
                yield archived.read_bytes()
                return
            raise BackendError(
                f"replica {replica_index} of workload {workload_id} has no pod (and no saved logs)"
            )
        if follow:
            pod = await self._started(workload_id, replica_index, pod)
        name = pod["metadata"]["name"]
        try:
            async for line in self.client.log(name, namespace=self._namespace, follow=follow):
                yield line.encode()
        except httpx2.HTTPError as exc:
            raise api_error(exc, f"read the logs of pod {name}", self._server) from exc

    async def _started(self, workload_id: str, replica_index: int, pod: Manifest) -> Manifest:
        """Following a replica that is still Pending waits for its container to start (or the pod to go)."""
        while (pod.get("status") or {}).get("phase", "Pending") == "Pending":
            await self._changed.wait()
            current = self._pod_for(workload_id, replica_index)
            if current is None:
                raise BackendError(
                    f"replica {replica_index} of workload {workload_id} ended before it started"
                )
            pod = current
        return pod

    async def endpoints(self, workload_id: str) -> list[Endpoint]:
        """Where an interactive or service workload answers: its Service's in-cluster DNS name and ports."""
        service = await self._get("Service", naming.object_name(workload_id))
        if service is None or workload_id_of(service) != workload_id:
            return []
        host = f"{service['metadata']['name']}.{self._namespace}.svc"
        return [
            Endpoint(
                port=int(port["port"]),
                host=host,
                target_port=int(port["port"]),
                node_port=port.get("nodePort"),
            )
            for port in (service.get("spec") or {}).get("ports") or ()
        ]

    async def exec(
        self,
        workload_id: str,
        replica_index: int,
        argv: list[str],
        *,
        stdin: bytes | None = None,
        timeout_s: float | None = None,
    ) -> ExecResult:
        """Run a command in a replica's container (non-interactive) and return its output and exit code."""
        pod = self._pod_for(workload_id, replica_index)
        if pod is None:
            raise BackendError(f"replica {replica_index} of workload {workload_id} has no running pod")
        name = pod["metadata"]["name"]
        try:
            response = await self.client.exec(
                name,
                namespace=self._namespace,
                command=argv,
                stdin=stdin,
                stdout=True,
                stderr=True,
                timeout=timeout_s,
            )
        except httpx2.HTTPError as exc:
            raise api_error(exc, f"run a command in pod {name}", self._server) from exc
        return ExecResult(response.exit_code, str(response.stdout or ""), str(response.stderr or ""))

    async def open_exec(self, workload_id: str, replica_index: int, request: ExecRequest) -> ExecSession:
        """With a terminal, a streaming session (TtyExecSession); without, the command runs once its stdin
        is in (the exec subresource of v4 cannot close stdin without closing the session)."""
        pod = self._pod_for(workload_id, replica_index)
        if pod is None or _phase(pod) != "Running":
            raise BackendError(f"replica {replica_index} of workload {workload_id} has no running pod")
        if request.tty:
            return await self._open_terminal(pod, request)

        async def run(stdin: bytes | None) -> tuple[int, str, str]:
            result = await self.exec(workload_id, replica_index, list(request.argv), stdin=stdin)
            return result.exit_code, result.stdout, result.stderr

        return OneShotExecSession(run)

    async def _open_terminal(self, pod: Manifest, request: ExecRequest) -> ExecSession:
        name = pod["metadata"]["name"]
        container = ((pod.get("spec") or {}).get("containers") or [{}])[0].get("name")
        params = {"command": list(request.argv), "container": container, "stdin": True, "stdout": True}
        params["tty"] = True
        # lightkube runs exec only to completion; its request builder and HTTP client open the stream.
        generic = self.client._client
        prepared = generic.prepare_request("exec", Pod, None, name, self._namespace, params=params)
        connection = generic._client.websocket(
            prepared.url,
            subprotocols=[EXEC_SUBPROTOCOL],
            params=prepared.params,
            keepalive_ping_interval_seconds=TERMINAL_PING_S,
        )
        try:
            return await TtyExecSession.connect(connection, request.rows, request.cols)
        except (httpx2.HTTPError, HTTPXWSException, OSError) as exc:
            raise BackendError(f"cannot open a terminal in pod {name}: {exc}") from exc

    async def roll(self, spec: LaunchSpec) -> None:
        """Patch the service's Deployment to the new revision's container (command, image, env); its
        RollingUpdate strategy (maxSurge 1, maxUnavailable 0, readiness probes) does the rest."""
        name = naming.object_name(spec.workload_id)
        existing = await self._get("Deployment", name)
        if existing is None:
            raise BackendError(f"workload {spec.workload_id} has no Deployment to roll")
        template = existing["spec"]["template"]
        if (template["metadata"].get("annotations") or {}).get(REVISION_ANNOTATION) == str(spec.revision):
            return
        wanted = mf.build_manifests(spec, self._manifest_options(spec)).root["spec"]["template"]
        container = wanted["spec"]["containers"][0]
        pod_patch: Manifest = {
            "containers": [
                {key: container[key] for key in ("name", "image", "command", "env") if key in container}
            ]
        }
        if "initContainers" in wanted["spec"]:  # the new pods fetch the code with a fresh credential
            pod_patch["initContainers"] = wanted["spec"]["initContainers"]
        patch = {
            "spec": {
                "template": {
                    "metadata": {"annotations": {REVISION_ANNOTATION: str(spec.revision)}},
                    "spec": pod_patch,
                }
            }
        }
        try:
            await self.client.patch(resource_for("Deployment"), name, patch, namespace=self._namespace)
        except httpx2.HTTPError as exc:
            raise BackendError(describe(exc, f"roll Deployment {name}", self._server)) from exc

    def _pod_for(self, workload_id: str, replica_index: int) -> Manifest | None:
        pods = self._pods_of(workload_id)
        launcher = next((pod for pod in pods if pod_replica_index(pod) == LAUNCHER), None)
        if launcher is not None and replica_index == 0:
            return launcher  # mpirun's output, for every rank, is the launcher's
        by_index, _ = assign_indices(pods, max([replicas_of(pod) for pod in pods] or [0]))
        return by_index.get(replica_index)

    def _archive_path(self, workload_id: str, replica_index: int) -> Path:
        return (
            self._settings.logs_dir
            / "kubernetes"
            / naming.object_name(workload_id)
            / f"replica-{replica_index}.log"
        )

    # --------------------------------------------------------------------------------- forget, orphans

    async def forget(self, workload_id: str) -> None:
        """Save each replica's log under the data dir, then delete the workload's objects."""
        async with self._lock(workload_id):
            pods = self._pods_of(workload_id)
            for index in range(max([replicas_of(pod) for pod in pods] or [0])):
                await self._archive_logs(workload_id, index)
            for kind, root in await self._roots_of(workload_id):
                await self._delete(kind, root["metadata"]["name"], grace_s=0)
            for pod in self._pods_of(workload_id):
                await self._delete("Pod", pod["metadata"]["name"], grace_s=0)
            self._stopping.pop(workload_id, None)
            if self._pods_of(workload_id):
                self._forgotten.add(workload_id)
            for key in [key for key in self._last if key[0] == workload_id]:
                del self._last[key]
            self._locks.pop(workload_id, None)

    async def _archive_logs(self, workload_id: str, replica_index: int) -> None:
        path = self._archive_path(workload_id, replica_index)
        chunks: list[bytes] = []
        try:
            async for chunk in self.logs(workload_id, replica_index, follow=False):
                chunks.append(chunk)
        except BackendError as exc:  # a pod that never started has no log; keep forgetting
            log.info("no logs saved for %s replica %s: %s", workload_id, replica_index, exc)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"".join(chunks))

    async def reconcile_orphans(
        self, known_workload_ids: Collection[str], policy: OrphanPolicy = OrphanPolicy.REPORT
    ) -> list[Orphan]:
        """Objects labelled as AstraGo's whose workload the platform does not know (e.g. created just
        before a crash that lost the database transaction), reported and, under DELETE, removed."""
        known = set(known_workload_ids)
        orphans: list[Orphan] = []
        for root in await self._roots():
            workload_id = workload_id_of(root)
            if not workload_id or workload_id in known:
                continue
            kind, name = str(root["kind"]), root["metadata"]["name"]
            if policy is OrphanPolicy.DELETE:
                await self._delete(kind, name, grace_s=self._settings.stop_grace_s)
            orphans.append(Orphan(workload_id, kind, name, deleted=policy is OrphanPolicy.DELETE))
            log.warning("orphaned %s %s of unknown workload %s (%s)", kind, name, workload_id, policy.value)
        return orphans

    # --------------------------------------------------------------------------------------- helpers

    def _lock(self, workload_id: str) -> asyncio.Lock:
        return self._locks.setdefault(workload_id, asyncio.Lock())


def _ignore_change(_old: Manifest | None, _new: Manifest | None) -> None:
    """The cluster-wide pod cache is read when the inventory is taken; single changes need no action."""


def _owned_by(manifest: Manifest, owner_manifest: Manifest, owner: Manifest) -> Manifest:
    """`manifest` owned by the created `owner` (its uid), so deleting the owner deletes it too."""
    metadata = owner.get("metadata") or {}
    if not metadata.get("uid"):
        return manifest
    reference = {
        "apiVersion": owner_manifest["apiVersion"],
        "kind": owner_manifest["kind"],
        "name": metadata["name"],
        "uid": metadata["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
    return {**manifest, "metadata": {**manifest["metadata"], "ownerReferences": [reference]}}


def _phase(pod: Manifest | None) -> str | None:
    return ((pod or {}).get("status") or {}).get("phase")


def _role(obj: Manifest) -> str | None:
    value = ((obj.get("metadata") or {}).get("labels") or {}).get(naming.ROLE_LABEL)
    return str(value) if value else None


def _is_managed(obj: Manifest) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return bool(labels.get(naming.MANAGED_BY_LABEL) == naming.MANAGER)


def _after_deletion(
    observation: ReplicaObservation, deleted: Manifest, nodes: Collection[str]
) -> ReplicaObservation:
    """A pod deleted while AstraGo did not ask: its node is gone (LOST) or a controller replaces it."""
    node = (deleted.get("spec") or {}).get("nodeName")
    if observation.state is ReplicaState.STARTING and node and node not in nodes:
        return ReplicaObservation(
            observation.workload_id,
            observation.replica_index,
            ReplicaState.LOST,
            reason=f"node {node} is gone from the cluster",
            node=node,
        )
    return observation


def _same(old: ReplicaObservation | None, new: ReplicaObservation) -> bool:
    if old is None:
        return False
    return (old.state, old.reason, old.exit_code, old.node) == (
        new.state,
        new.reason,
        new.exit_code,
        new.node,
    )
