"""Pod names for pod UIDs, from a watch of the pods scheduled on this node (Kubernetes API via lightkube).

`/proc/<pid>/cgroup` gives a pod UID and a container ID; only the API server knows the pod's name,
namespace and the container's name (the kubelet pod-resources API has no pod UID). The watcher lists and
then watches pods with `spec.nodeName=<node>` in a background thread and re-lists after any error."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PodRef:
    uid: str
    namespace: str
    name: str
    containers: Mapping[str, str] = field(default_factory=dict)  # container ID (no runtime prefix) → name

    def container_name(self, container_id: str | None) -> str:
        return self.containers.get(container_id or "", "")


class PodDirectory(Protocol):
    def pod(self, uid: str) -> PodRef | None: ...

    def is_current(self) -> bool:
        """False while the directory cannot follow the cluster (pod names may be missing or stale)."""
        ...


def pod_ref(pod: Mapping[str, Any]) -> PodRef | None:
    """A `PodRef` from a pod as a plain dict (the API's JSON); `None` without a UID."""
    metadata = pod.get("metadata") or {}
    uid = metadata.get("uid")
    if not uid:
        return None
    status = pod.get("status") or {}
    containers: dict[str, str] = {}
    for key in ("initContainerStatuses", "containerStatuses", "ephemeralContainerStatuses"):
        for entry in status.get(key) or []:
            container_id = (entry.get("containerID") or "").partition("://")[2]
            if container_id and entry.get("name"):
                containers[container_id] = entry["name"]
    return PodRef(
        uid=uid,
        namespace=metadata.get("namespace") or "",
        name=metadata.get("name") or "",
        containers=containers,
    )


class StaticPodDirectory:
    """A fixed set of pods (tests, and `gpu ls` runs that were given no cluster)."""

    def __init__(self, pods: Iterable[PodRef] = ()) -> None:
        self._pods = {pod.uid: pod for pod in pods}

    def pod(self, uid: str) -> PodRef | None:
        return self._pods.get(uid)

    def is_current(self) -> bool:
        return True


class NodePodWatcher:
    """Keeps the pods of one node current. `client` is a `lightkube.Client` (sync)."""

    def __init__(self, client: Any, node: str, retry_s: float = 1.0, max_retry_s: float = 60.0) -> None:
        self._client = client
        self.node = node
        self._retry_s = retry_s
        self._max_retry_s = max_retry_s
        self._watching = False
        self.failures = 0
        self._pods: dict[str, PodRef] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.synced = threading.Event()

    def pod(self, uid: str) -> PodRef | None:
        with self._lock:
            return self._pods.get(uid)

    def is_current(self) -> bool:
        return self._watching

    def _on_this_node(self, pod: Mapping[str, Any]) -> PodRef | None:
        # The API server applies the field selector; checking again keeps a lax server from leaking pods in.
        if (pod.get("spec") or {}).get("nodeName") != self.node:
            return None
        return pod_ref(pod)

    def apply(self, event: str, pod: Mapping[str, Any]) -> None:
        ref = self._on_this_node(pod)
        if ref is None:
            return
        with self._lock:
            if event == "DELETED":
                self._pods.pop(ref.uid, None)
            else:
                self._pods[ref.uid] = ref

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="gpu-pod-watch", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop watching; closing the client makes the thread's next request fail, so it exits promptly."""
        self._stop.set()
        close = getattr(self._client, "close", None)
        if close is not None:
            close()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _run(self) -> None:
        from lightkube.resources.core_v1 import Pod

        selector = {"spec.nodeName": self.node}
        delay = self._retry_s
        while not self._stop.is_set():
            try:
                listed = {}
                for pod in self._client.list(Pod, namespace="*", fields=selector):
                    ref = self._on_this_node(pod.to_dict())
                    if ref is not None:
                        listed[ref.uid] = ref
                with self._lock:
                    self._pods = listed
                self._watching = True
                self.synced.set()
                delay = self._retry_s
                for event, pod in self._client.watch(Pod, namespace="*", fields=selector):
                    self.apply(event, pod.to_dict())
                    if self._stop.is_set():
                        return
            except Exception as exc:  # any API or network failure: log, back off, re-list
                self._watching = False
                if self._stop.is_set():
                    return
                self.failures += 1
                log.warning("pod watch on node %s failed, re-listing in %gs: %s", self.node, delay, exc)
                self._stop.wait(delay)
                delay = min(delay * 2, self._max_retry_s)


def watch_node_pods(kubeconfig: str | None, node: str) -> NodePodWatcher:
    """Start a watcher from a kubeconfig file (or in-cluster config when `kubeconfig` is None)."""
    from lightkube import Client, KubeConfig

    config = KubeConfig.from_file(kubeconfig) if kubeconfig else None
    watcher = NodePodWatcher(Client(config=config), node)
    watcher.start()
    return watcher
