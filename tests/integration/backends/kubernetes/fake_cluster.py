"""A Kubernetes API on loopback (kmock's in-memory emulator) plus the parts of a cluster it lacks.

No kube-apiserver, kind, k3s or envtest can run on the test machines (docs/architecture.md), so these tests
use PyPI `kmock`, a real HTTP server that stores objects and streams watch events. Its gaps are filled
here, each the way a real cluster behaves:

- `ApiServer` adds the API server's own bookkeeping that kmock leaves out: metadata.namespace from the
  URL, uid, resourceVersion and creationTimestamp; label selectors on list and watch; errors as
  `application/json` Status bodies; answers to SelfSubjectAccessReview (and 403s for denied verbs);
  watch expiry: `expire_watches()` closes open watches and answers a resume from an older
  resourceVersion with a 410 Gone ERROR event, as after etcd compaction; pod logs and exec
  (websocket, v4.channel.k8s.io) served from what the test gives; a TTY exec runs its command on a real
  pseudo-terminal of the test machine (stdin, resize and status channels as the kubelet serves them).
- `Kubelet` plays the controllers and the kubelet, which kmock does not run: it creates the pods of
  Jobs, Deployments and MPIJobs from their templates, binds them to a node named by the node affinity,
  moves them Pending → Running → Succeeded/Failed with exit codes, OOMKilled and image pull errors,
  and garbage-collects pods and services whose owner is gone."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import re
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp.web
import httpx
import kmock
import yaml
from kmock._internal import enums as kmock_enums
from kmock._internal import rendering
from ptyprocess import PtyProcess

from tests.unit.backends.kubernetes.factories import node_manifest

Manifest = dict[str, Any]
NAMESPACE = "astrago"
STORAGE_CLASS = "astrago-nfs-csi"

CORE_RESOURCES = {
    "v1/pods": ("Pod", True),
    "v1/services": ("Service", True),
    "v1/nodes": ("Node", False),
    "v1/persistentvolumeclaims": ("PersistentVolumeClaim", True),
    "batch/v1/jobs": ("Job", True),
    "apps/v1/deployments": ("Deployment", True),
    "storage.k8s.io/v1/storageclasses": ("StorageClass", False),
}
MPIJOB_RESOURCE = "kubeflow.org/v2beta1/mpijobs"
_EXPIRED = "ASTRAGO-TEST-EXPIRED"
FOREGROUND = "foregroundDeletion"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _json(status: int, body: Manifest) -> aiohttp.web.Response:
    # Exactly `application/json`, as the real API server sends it (clients compare the header verbatim).
    return aiohttp.web.Response(
        status=status, body=json.dumps(body).encode(), content_type="application/json"
    )


def _status(code: int, reason: str, message: str) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Status",
        "status": "Failure",
        "code": code,
        "reason": reason,
        "message": message,
    }


def _matches(obj: Manifest, selector: str | None) -> bool:
    if not selector:
        return True
    labels = (obj.get("metadata") or {}).get("labels") or {}
    for term in selector.split(","):
        key, _, value = term.partition("=")
        if labels.get(key) != value:
            return False
    return True


ExecHandler = Callable[[str, list[str]], tuple[int, str, str]]


STARTED_KINDS = ("jobs", "deployments", "mpijobs")  # what a start creates: counted, to see a start twice
KUBELET_HEADER = "X-Test-Kubelet"  # marks the test's own requests, which a fault never touches


@dataclass(frozen=True)
class ApiFault:
    """What the API server does to AstraGo's requests while `ApiServer.fault` holds it: answer `status`
    (a 500 as when etcd times out, a 503 as during a restart) and/or answer only after `delay_s` (longer
    than the client's timeout: the request times out)."""

    status: int | None = 500
    delay_s: float = 0.0
    message: str = "etcdserver: request timed out"


class ApiServer(kmock.KubernetesEmulator):  # type: ignore[misc]
    """kmock's emulator with the API server behaviour listed in the module docstring."""

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.version = itertools.count(1)
        self.current_version = 0
        self.compacted_before = 0
        self.namespaces = {NAMESPACE}
        self.denied: set[tuple[str, str]] = set()  # (verb, resource) the credentials may not use
        self.broken: set[tuple[str, str]] = set()  # (verb, resource) the server fails with 500
        self.pod_logs: dict[str, str] = {}
        self.exec_handler: ExecHandler = lambda pod, argv: (0, "", "")
        self.terminals: list[tuple[str, list[str], str]] = []  # (pod, argv, container) of each TTY exec
        self.gone_answers = 0  # watches answered with 410 Gone
        # A failing or slow API server for AstraGo's requests (never for the test's own Kubelet), and
        # how many Job/Deployment/MPIJob objects it was asked to create, by name (a start done twice shows).
        self.fault: ApiFault | None = None
        self.faulted_requests = 0
        self.creates: Counter[str] = Counter()

    def _next_version(self) -> str:
        self.current_version = next(self.version)
        return str(self.current_version)

    async def _handle(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        fault = self.fault
        raw = request._raw_request
        if fault is not None and raw is not None and KUBELET_HEADER not in raw.headers:
            self.faulted_requests += 1
            if fault.delay_s:
                await asyncio.sleep(fault.delay_s)
            if fault.status is not None:
                return _json(fault.status, _status(fault.status, "InternalError", fault.message))
        if request.resource is not None:
            special = await self._special(request)
            if special is not None:
                return special
            self._bookkeep(request)
        response = await super()._handle(request)
        self._count_created(request, response)
        return response

    def _count_created(self, request: rendering.Request, response: aiohttp.web.StreamResponse) -> None:
        created = request.resource is not None and self._verb(request) == "create" and response.status < 300
        if created and request.resource.plural in STARTED_KINDS and isinstance(request.data, dict):
            self.creates[str((request.data.get("metadata") or {}).get("name"))] += 1

    async def _special(self, request: rendering.Request) -> aiohttp.web.StreamResponse | None:
        resource = request.resource
        plural = resource.plural
        path = request.url.path
        if (
            request.method == kmock_enums.method.GET
            and path.startswith("/api/v1/namespaces/")
            and plural is None
        ):
            name = path.rsplit("/", 1)[-1]
            if ("get", "namespaces") in self.denied:
                return _json(403, _status(403, "Forbidden", f'namespaces "{name}" is forbidden'))
            if name in self.namespaces:
                return _json(200, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
            return _json(404, _status(404, "NotFound", f'namespaces "{name}" not found'))
        if plural == "selfsubjectaccessreviews":
            attributes = request.data["spec"]["resourceAttributes"]
            qualified = attributes["resource"] + (
                f"/{attributes['subresource']}" if attributes.get("subresource") else ""
            )
            allowed = (attributes["verb"], qualified) not in self.denied
            return _json(201, {**request.data, "status": {"allowed": allowed}})
        verb = self._verb(request)
        qualified = f"{plural}/{request.subresource}" if request.subresource else plural
        if verb and (verb, qualified) in self.denied:
            return _json(403, _status(403, "Forbidden", f"{qualified} is forbidden: cannot {verb}"))
        if verb and (verb, qualified) in self.broken:
            return _json(500, _status(500, "InternalError", "etcdserver: request timed out"))
        if request.subresource == "log":
            text = self.pod_logs.get(request.name or "", "")
            if tail := request.params.get("tailLines"):
                text = "".join(text.splitlines(keepends=True)[-int(tail) :])
            return aiohttp.web.Response(text=text, content_type="text/plain")
        if request.subresource == "exec":
            return await self._exec(request)
        if request.action == kmock_enums.action.WATCH:
            version = int(request.params.get("resourceVersion") or 0)
            if version and version < self.compacted_before:
                self.gone_answers += 1
                gone = _status(
                    410, "Expired", f"too old resource version: {version} ({self.compacted_before})"
                )
                response = aiohttp.web.StreamResponse(headers={"Content-Type": "application/json"})
                assert request._raw_request is not None
                await response.prepare(request._raw_request)
                await response.write(json.dumps({"type": "ERROR", "object": gone}).encode() + b"\n")
                await response.write_eof()
                return response
        return None

    @staticmethod
    def _verb(request: rendering.Request) -> str | None:
        return (
            {
                kmock_enums.action.CREATE: "create",
                kmock_enums.action.DELETE: "delete",
                kmock_enums.action.UPDATE: "patch",
                kmock_enums.action.FETCH: "get",
                kmock_enums.action.LIST: "list",
                kmock_enums.action.WATCH: "watch",
            }.get(request.action)
            if request.action is not None
            else None
        )

    def _bookkeep(self, request: rendering.Request) -> None:
        if request.action == kmock_enums.action.CREATE and isinstance(request.data, dict):
            metadata = request.data.setdefault("metadata", {})
            if request.namespace:
                metadata.setdefault("namespace", request.namespace)
            metadata.setdefault("uid", str(uuid.uuid4()))
            metadata.setdefault("creationTimestamp", _now())
            metadata["resourceVersion"] = self._next_version()
        elif request.action == kmock_enums.action.UPDATE and isinstance(request.data, dict):
            request.data.setdefault("metadata", {})["resourceVersion"] = self._next_version()
        elif request.action == kmock_enums.action.DELETE:
            self._next_version()
            key = (request.resource, request.namespace, request.name)
            if request.params.get("propagationPolicy") == "Foreground" and key in self._objects:
                # The API server keeps the owner, marked, until the garbage collector removed its dependents.
                self._objects[key].patch({"metadata": {"finalizers": [FOREGROUND]}})

    async def _serve_list(self, request: rendering.Request) -> rendering.Payload:
        payload = await super()._serve_list(request)
        selector = request.params.get("labelSelector")
        payload["items"] = [item for item in payload["items"] if _matches(item, selector)]
        payload["metadata"]["resourceVersion"] = str(self.current_version)
        return payload

    async def _serve_watch(self, request: rendering.Request) -> AsyncIterator[rendering.Payload]:
        selector = request.params.get("labelSelector")
        since = int(request.params.get("resourceVersion") or 0)
        events = super()._serve_watch(request)
        async with contextlib.aclosing(events):
            async for event in events:
                if isinstance(event, dict):
                    if event.get("type") == _EXPIRED:
                        return  # the server ends the watch; the client must resume
                    obj = event.get("object") or {}
                    if not _matches(obj, selector):
                        continue
                    version = int((obj.get("metadata") or {}).get("resourceVersion") or 0)
                    if event.get("type") == "ADDED" and version and version <= since:
                        continue  # a resumed watch sends only what changed after its version
                yield event

    async def expire_watches(self) -> None:
        """Compact history: open watches end, and resuming from any version seen so far gets 410 Gone."""
        self.compacted_before = self.current_version + 1
        self._next_version()
        await self.drop_watches()

    async def drop_watches(self) -> None:
        """End every open watch stream (as the API server does on its timeout); history stays."""
        for bus in list(self._buses.values()):
            for namespace in (*self.namespaces, None):
                await bus.put({"type": _EXPIRED, "object": {"metadata": {"namespace": namespace}}})

    async def _exec(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        raw = request._raw_request
        assert raw is not None
        argv = raw.query.getall("command", [])
        ws = aiohttp.web.WebSocketResponse(protocols=("v4.channel.k8s.io",))
        await ws.prepare(raw)
        if raw.query.get("tty") == "true":
            self.terminals.append((request.name or "", argv, raw.query.get("container", "")))
            await _serve_terminal(ws, argv)
            return ws
        code, stdout, stderr = self.exec_handler(request.name or "", argv)
        if stdout:
            await ws.send_bytes(b"\x01" + stdout.encode())
        if stderr:
            await ws.send_bytes(b"\x02" + stderr.encode())
        if code == 0:
            status: Manifest = {"metadata": {}, "status": "Success"}
        else:
            status = {
                "metadata": {},
                "status": "Failure",
                "reason": "NonZeroExitCode",
                "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
            }
        await ws.send_bytes(b"\x03" + json.dumps(status).encode())
        await ws.close()
        return ws


async def _serve_terminal(ws: aiohttp.web.WebSocketResponse, argv: list[str]) -> None:
    """A TTY exec as the kubelet's container runtime serves it, with the test machine as the container:
    the command on a real pseudo-terminal; channel 0 in is its keyboard, channel 4 its window size
    ({"Width", "Height"}); its output goes out on channel 1, and its end as a v1.Status on channel 3."""
    process = PtyProcess.spawn(argv, dimensions=(24, 80))
    loop = asyncio.get_running_loop()
    output: asyncio.Queue[bytes] = asyncio.Queue()

    def readable() -> None:
        try:
            data = os.read(process.fd, 65536)
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(process.fd)
        output.put_nowait(data)

    async def keyboard() -> None:
        async for message in ws:
            channel, data = message.data[0], message.data[1:]
            if channel == 0:
                os.write(process.fd, data)
            elif channel == 4:
                size = json.loads(data)
                process.setwinsize(size["Height"], size["Width"])
        process.terminate(force=True)  # the caller went away: so does the command (EOF on its output)

    loop.add_reader(process.fd, readable)
    keys = asyncio.create_task(keyboard())
    try:
        while data := await output.get():
            await ws.send_bytes(b"\x01" + data)
        code = await asyncio.to_thread(process.wait)
    finally:
        keys.cancel()
        process.terminate(force=True)
    status: Manifest = {"metadata": {}, "status": "Success"}
    if code:
        cause = {"reason": "ExitCode", "message": str(code)}
        status = {"status": "Failure", "reason": "NonZeroExitCode", "details": {"causes": [cause]}}
    await ws.send_bytes(b"\x03" + json.dumps(status).encode())
    await ws.close()


@dataclass
class Kubelet:
    """Plays the Job, Deployment and MPI controllers, the scheduler binding, the kubelet and the GC."""

    http: httpx.AsyncClient
    namespace: str = NAMESPACE
    created_pods: list[str] = field(default_factory=list)

    # ---- API plumbing
    async def list(self, path: str) -> list[Manifest]:
        response = await self.http.get(path)
        response.raise_for_status()
        items: list[Manifest] = response.json()["items"]
        return items

    async def create(self, path: str, obj: Manifest) -> Manifest:
        response = await self.http.post(path, json=obj)
        response.raise_for_status()
        created: Manifest = response.json()
        return created

    async def patch(self, path: str, patch: Manifest) -> None:
        response = await self.http.patch(
            path, json=patch, headers={"Content-Type": "application/merge-patch+json"}
        )
        response.raise_for_status()

    async def delete(self, path: str) -> None:
        response = await self.http.delete(path)
        if response.status_code != 404:
            response.raise_for_status()

    def _ns(self, plural: str, group: str = "api/v1") -> str:
        return f"/{group}/namespaces/{self.namespace}/{plural}"

    # ---- cluster parts
    async def add_node(self, name: str, **kwargs: Any) -> None:
        await self.create("/api/v1/nodes", node_manifest(name, **kwargs))

    async def remove_node(self, name: str) -> None:
        await self.delete(f"/api/v1/nodes/{name}")

    async def pods(self, workload_label: str | None = None) -> list[Manifest]:
        pods = await self.list(self._ns("pods"))
        if workload_label is None:
            return pods
        return [
            p for p in pods if p["metadata"].get("labels", {}).get("astrago.io/workload") == workload_label
        ]

    async def reconcile(self) -> list[str]:
        """One pass of the controllers: create missing pods, collect garbage. Returns new pod names."""
        created: list[str] = []
        pods = await self.list(self._ns("pods"))
        owned = {ref["uid"] for pod in pods for ref in pod["metadata"].get("ownerReferences", [])}
        for job in await self.list(self._ns("jobs", "apis/batch/v1")):
            if job["metadata"]["uid"] not in owned:
                created += await self._pods_for_job(job)
        for deployment in await self.list(self._ns("deployments", "apis/apps/v1")):
            if deployment["metadata"]["uid"] not in owned:
                created += await self._pods_for_deployment(deployment)
        with contextlib.suppress(httpx.HTTPStatusError):
            for mpijob in await self.list(self._ns("mpijobs", "apis/kubeflow.org/v2beta1")):
                if mpijob["metadata"]["uid"] not in owned:
                    created += await self._pods_for_mpijob(mpijob)
        await self.collect_garbage()
        self.created_pods += created
        return created

    async def collect_garbage(self) -> None:
        """Delete pods and services whose owner is gone or being deleted, then release the owners that
        waited for their dependents (foreground deletion)."""
        owners: dict[str, tuple[str, Manifest]] = {}
        for path in (
            self._ns("jobs", "apis/batch/v1"),
            self._ns("deployments", "apis/apps/v1"),
            self._ns("pods"),
            self._ns("mpijobs", "apis/kubeflow.org/v2beta1"),
        ):
            with contextlib.suppress(httpx.HTTPStatusError):  # no MPI Operator: no mpijobs
                owners |= {obj["metadata"]["uid"]: (path, obj) for obj in await self.list(path)}
        live = {uid for uid, (_, obj) in owners.items() if not obj["metadata"].get("deletionTimestamp")}
        remaining: set[str] = set()
        for plural in ("pods", "services"):
            for obj in await self.list(self._ns(plural)):
                refs = obj["metadata"].get("ownerReferences") or []
                if refs and not any(ref["uid"] in live for ref in refs):
                    await self.delete(f"{self._ns(plural)}/{obj['metadata']['name']}")
                else:
                    remaining |= {ref["uid"] for ref in refs}
        for uid, (path, obj) in owners.items():
            finalizers = obj["metadata"].get("finalizers") or []
            if FOREGROUND in finalizers and uid not in remaining:
                rest = [f for f in finalizers if f != FOREGROUND]
                await self.patch(f"{path}/{obj['metadata']['name']}", {"metadata": {"finalizers": rest}})

    async def _create_pod(
        self,
        owner: Manifest,
        template: Manifest,
        name: str,
        index: int,
        labels: dict[str, str],
        annotations: dict[str, str],
    ) -> str:
        spec = json.loads(json.dumps(template["spec"]))
        terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
            "nodeSelectorTerms"
        ]
        nodes = terms[0]["matchFields"][0]["values"]
        spec["nodeName"] = nodes[index % len(nodes)]  # what the kube-scheduler binds within the affinity
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": self.namespace,
                "labels": {**template["metadata"].get("labels", {}), **labels},
                "annotations": {**template["metadata"].get("annotations", {}), **annotations},
                "ownerReferences": [
                    {
                        "apiVersion": owner["apiVersion"],
                        "kind": owner["kind"],
                        "name": owner["metadata"]["name"],
                        "uid": owner["metadata"]["uid"],
                        "controller": True,
                    }
                ],
            },
            "spec": spec,
            "status": {"phase": "Pending"},
        }
        await self.create(self._ns("pods"), pod)
        return name

    async def _pods_for_job(self, job: Manifest) -> list[str]:
        spec = job["spec"]
        indexed = spec.get("completionMode") == "Indexed"
        names = []
        for index in range(spec.get("completions", 1)):
            suffix = uuid.uuid4().hex[:5]
            name = (
                f"{job['metadata']['name']}-{index}-{suffix}"
                if indexed
                else f"{job['metadata']['name']}-{suffix}"
            )
            extra = {"batch.kubernetes.io/job-completion-index": str(index)} if indexed else {}
            names.append(await self._create_pod(job, spec["template"], name, index, dict(extra), dict(extra)))
        return names

    async def _pods_for_deployment(self, deployment: Manifest) -> list[str]:
        spec = deployment["spec"]
        base = f"{deployment['metadata']['name']}-{uuid.uuid4().hex[:8]}"
        return [
            await self._create_pod(deployment, spec["template"], f"{base}-{uuid.uuid4().hex[:5]}", i, {}, {})
            for i in range(spec["replicas"])
        ]

    async def _pods_for_mpijob(self, mpijob: Manifest) -> list[str]:
        specs = mpijob["spec"]["mpiReplicaSpecs"]
        name = mpijob["metadata"]["name"]
        role = "training.kubeflow.org/job-role"
        names = [
            await self._create_pod(
                mpijob, specs["Launcher"]["template"], f"{name}-launcher", 0, {role: "launcher"}, {}
            )
        ]
        for index in range(specs["Worker"]["replicas"]):
            labels = {role: "worker", "training.kubeflow.org/replica-index": str(index)}
            names.append(
                await self._create_pod(
                    mpijob, specs["Worker"]["template"], f"{name}-worker-{index}", index, labels, {}
                )
            )
        return names

    # ---- the kubelet
    async def set_status(self, pod: str, status: Manifest) -> None:
        await self.patch(f"{self._ns('pods')}/{pod}/status", {"status": status})

    async def run(self, pod: str, *, ready: bool = True) -> None:
        """The container runs; `ready` is what its readiness probe says (a pod without one is ready)."""
        state = {"running": {"startedAt": _now()}}
        statuses = await self._container_status(pod, state, ready=ready)
        await self.set_status(pod, {"phase": "Running", "containerStatuses": statuses})

    async def probe(self, pod: str, *, ready: bool) -> None:
        """The readiness probe of a running container starts or stops passing."""
        response = await self.http.get(f"{self._ns('pods')}/{pod}")
        response.raise_for_status()
        statuses = response.json()["status"]["containerStatuses"]
        await self.set_status(pod, {"containerStatuses": [{**statuses[0], "ready": ready}]})

    async def finish(self, pod: str, exit_code: int = 0, reason: str | None = None) -> None:
        terminated: Manifest = {"exitCode": exit_code, "startedAt": _now(), "finishedAt": _now()}
        terminated["reason"] = reason or ("Completed" if exit_code == 0 else "Error")
        statuses = await self._container_status(pod, {"terminated": terminated})
        phase = "Succeeded" if exit_code == 0 else "Failed"
        await self.set_status(pod, {"phase": phase, "containerStatuses": statuses})

    async def fail_image_pull(self, pod: str, message: str) -> None:
        state = {"waiting": {"reason": "ErrImagePull", "message": message}}
        statuses = await self._container_status(pod, state)
        await self.set_status(pod, {"phase": "Pending", "containerStatuses": statuses})

    async def _container_status(self, pod: str, state: Manifest, *, ready: bool = False) -> list[Manifest]:
        response = await self.http.get(f"{self._ns('pods')}/{pod}")
        response.raise_for_status()
        container = response.json()["spec"]["containers"][0]
        status = {"name": container["name"], "image": container["image"], "imageID": "", "ready": ready}
        return [{**status, "restartCount": 0, "state": state}]


@dataclass
class FakeCluster:
    api: ApiServer
    url: str
    kubeconfig: Path
    kubelet: Kubelet

    def install_mpi_operator(self) -> None:
        self.api.resources[MPIJOB_RESOURCE] = kmock.ResourceInfo(kind="MPIJob", namespaced=True)


def write_kubeconfig(path: Path, server: str) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "test", "cluster": {"server": server}}],
        "users": [{"name": "astrago", "user": {"token": "test-token"}}],
        "contexts": [
            {"name": "test", "context": {"cluster": "test", "user": "astrago", "namespace": NAMESPACE}}
        ],
        "current-context": "test",
    }
    path.write_text(yaml.safe_dump(config))
    return path


@contextlib.asynccontextmanager
async def running_cluster(
    tmp_path: Path, *, nodes: tuple[str, ...] = ("gpu-1", "gpu-2")
) -> AsyncIterator[FakeCluster]:
    async with ApiServer() as api, kmock.Server(api) as server:
        for key, (kind, namespaced) in CORE_RESOURCES.items():
            api.resources[key] = kmock.ResourceInfo(kind=kind, namespaced=namespaced)
        url = str(server.url).rstrip("/")
        async with httpx.AsyncClient(base_url=url, timeout=10, headers={KUBELET_HEADER: "1"}) as http:
            kubelet = Kubelet(http)
            await kubelet.create(
                "/apis/storage.k8s.io/v1/storageclasses",
                {
                    "apiVersion": "storage.k8s.io/v1",
                    "kind": "StorageClass",
                    "metadata": {"name": STORAGE_CLASS},
                    "provisioner": "nfs.csi.k8s.io",
                },
            )
            for name in nodes:
                await kubelet.add_node(name)
            yield FakeCluster(api, url, write_kubeconfig(tmp_path / "kubeconfig", url), kubelet)


async def eventually(check: Callable[[], Any], *, attempts: int = 200) -> Any:
    """Poll an (async) condition until it holds; event-driven tests never sleep for a fixed time."""
    for _ in range(attempts):
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached")


async def autopilot(cluster: FakeCluster, *, tick_s: float = 0.3) -> None:
    """Play the cluster on its own: controllers create pods, each pod runs at once and ends after the
    `sleep N` in its command (or after a second) with exit code 0, or 3 when the command says `exit 3`."""
    started: dict[str, float] = {}
    loop = asyncio.get_running_loop()
    while True:
        await cluster.kubelet.reconcile()
        for pod in await cluster.kubelet.pods():
            name, phase = pod["metadata"]["name"], pod["status"].get("phase")
            command = " ".join(pod["spec"]["containers"][0].get("command", []))
            if phase == "Pending" and pod["spec"].get("nodeName"):
                await cluster.kubelet.run(name)
                started[name] = loop.time()
                cluster.api.pod_logs[name] = f"{name}: {command or '(image entrypoint)'}\n"
            elif phase == "Running" and name in started:
                sleep = re.search(r"sleep (\d+)", command)
                if loop.time() - started[name] >= (int(sleep.group(1)) if sleep else 1):
                    await cluster.kubelet.finish(name, 3 if "exit 3" in command else 0)
        await asyncio.sleep(tick_s)


async def _serve(directory: Path) -> None:
    async with running_cluster(directory) as cluster:
        cluster.install_mpi_operator()
        print(f"fake cluster at {cluster.url}; kubeconfig: {cluster.kubeconfig}", flush=True)
        await autopilot(cluster)


if __name__ == "__main__":
    # Try `astrago server --backend kubernetes` without a cluster (docs/kubernetes.md):
    #   python -m tests.integration.backends.kubernetes.fake_cluster /tmp/fake-cluster
    import sys

    target = Path(sys.argv[1] if len(sys.argv) > 1 else "fake-cluster")
    target.mkdir(parents=True, exist_ok=True)
    asyncio.run(_serve(target))
