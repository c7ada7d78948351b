"""Observed state: Kubernetes pods (and their owner) → one ReplicaObservation per replica.

Pure functions over the JSON the API server returns, so every rule is unit-tested on plain dicts:
pod phases, container exit codes, OOMKilled, image pull errors as a clear reason, pods that wait for a
node, pods whose node disappeared (LOST), and replicas with ports that are RUNNING only once their
readiness probe passed (and FAILED when it has not passed within their readiness timeout)."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from astrago.backends.base import ReplicaObservation
from astrago.backends.kubernetes import naming
from astrago.backends.kubernetes.manifests import COMPLETION_INDEX_ANNOTATION, MPI_WORKER_INDEX_LABEL
from astrago.domain.enums import ReplicaState

Manifest = dict[str, Any]

# Labels the MPI Operator v2 puts on the pods of an MPIJob (both spellings have been used).
MPI_ROLE_LABELS = ("training.kubeflow.org/job-role", "training.kubeflow.org/replica-type")
MPI_INDEX_LABEL = MPI_WORKER_INDEX_LABEL
LAUNCHER = -1  # the replica "index" of an MPIJob launcher pod

_IMAGE_PULL_REASONS = {"ErrImagePull", "ImagePullBackOff"}
_NOT_FOUND = re.compile(r"not found|manifest unknown|name unknown|NotFound|does not exist", re.IGNORECASE)
_DENIED = re.compile(r"unauthorized|denied|authentication required|forbidden", re.IGNORECASE)


@dataclass(slots=True)
class WorkloadObjects:
    """Everything the cluster holds for one workload: its root object (if any) and its pods."""

    workload_id: str
    replicas: int
    kind: str = ""
    root: Manifest | None = None
    pods: list[Manifest] = field(default_factory=list)


def timestamp(value: str | None) -> float | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def workload_id_of(obj: Manifest) -> str | None:
    metadata = obj.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    if naming.WORKLOAD_ID_ANNOTATION in annotations:
        return str(annotations[naming.WORKLOAD_ID_ANNOTATION])
    labels = metadata.get("labels") or {}
    value = labels.get(naming.WORKLOAD_LABEL)
    return str(value) if value else None


def replicas_of(obj: Manifest) -> int:
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    try:
        return int(annotations.get(naming.REPLICAS_ANNOTATION, 1))
    except ValueError:
        return 1


def pod_replica_index(pod: Manifest) -> int | None:
    """Which replica a pod is; LAUNCHER for an MPI launcher; None for interchangeable Deployment pods."""
    metadata = pod.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    labels = metadata.get("labels") or {}
    for source in (annotations.get(naming.REPLICA_ANNOTATION), annotations.get(COMPLETION_INDEX_ANNOTATION)):
        if source is not None and str(source).isdigit():
            return int(source)
    role = next((labels[key] for key in MPI_ROLE_LABELS if key in labels), None)
    if role == "launcher":
        return LAUNCHER
    if role == "worker" and str(labels.get(MPI_INDEX_LABEL, "")).isdigit():
        return int(labels[MPI_INDEX_LABEL])
    if str(labels.get(COMPLETION_INDEX_ANNOTATION, "")).isdigit():
        return int(labels[COMPLETION_INDEX_ANNOTATION])
    return None


def observe_workload(
    objects: WorkloadObjects,
    nodes: Collection[str],
    stop_reason: str | None = None,
    *,
    now: float,
    log_tails: Mapping[str, str] | None = None,
) -> list[ReplicaObservation]:
    """One observation per replica 0..replicas-1 (MPI: the workers, finished by their launcher).
    `log_tails` (pod name → its last log lines) goes into the reason of a replica that never got ready."""
    if stop_reason is None and objects.root is not None:
        stop_reason = ((objects.root.get("metadata") or {}).get("annotations") or {}).get(
            naming.STOP_REASON_ANNOTATION
        )
    by_index, launcher = assign_indices(objects.pods, objects.replicas)
    observations = []
    for index in range(objects.replicas):
        pod = by_index.get(index)
        if pod is not None:
            tail = (log_tails or {}).get((pod.get("metadata") or {}).get("name") or "")
            observation = observe_pod(
                objects.workload_id, index, pod, nodes, stop_reason, now=now, log_tail=tail
            )
        else:
            observation = _missing(objects, index, stop_reason)
        observations.append(observation)
    if launcher is not None:
        observations = _finish_by_launcher(
            objects.workload_id, launcher, observations, nodes, stop_reason, now=now
        )
    return observations


def observe_pod(
    workload_id: str,
    index: int,
    pod: Manifest,
    nodes: Collection[str],
    stop_reason: str | None = None,
    *,
    now: float,
    log_tail: str | None = None,
) -> ReplicaObservation:
    status = pod.get("status") or {}
    node = (pod.get("spec") or {}).get("nodeName")
    phase = status.get("phase") or "Pending"
    container = _main_container_status(pod)
    running = (container.get("state") or {}).get("running") or {}
    terminated = (container.get("state") or {}).get("terminated") or {}
    waiting = (container.get("state") or {}).get("waiting") or {}
    base = ReplicaObservation(
        workload_id,
        index,
        ReplicaState.STARTING,
        node=node,
        started_at=timestamp(running.get("startedAt") or terminated.get("startedAt")),
        finished_at=timestamp(terminated.get("finishedAt")),
    )
    exit_code = terminated.get("exitCode")

    if phase == "Succeeded":
        return replace(base, state=ReplicaState.SUCCEEDED, exit_code=exit_code or 0)
    if phase == "Failed":
        if stop_reason:
            return replace(base, state=ReplicaState.STOPPED, exit_code=exit_code, reason=stop_reason)
        return replace(
            base, state=ReplicaState.FAILED, exit_code=exit_code, reason=_failure_reason(pod, terminated)
        )
    if node and node not in nodes:
        return replace(base, state=ReplicaState.LOST, reason=f"node {node} is gone from the cluster")
    if phase == "Unknown" or status.get("reason") == "NodeLost":
        return replace(
            base, state=ReplicaState.LOST, reason=f"node {node or '?'} stopped reporting the pod's state"
        )
    if waiting:
        return _waiting(pod, waiting, base)
    if phase == "Running":
        if terminated and stop_reason:
            return replace(base, state=ReplicaState.STOPPED, exit_code=exit_code, reason=stop_reason)
        return _running_once_ready(pod, container, base, now, log_tail)
    return replace(base, state=ReplicaState.STARTING, reason=_pending_reason(pod))


def _running_once_ready(
    pod: Manifest, container: Manifest, base: ReplicaObservation, now: float, log_tail: str | None
) -> ReplicaObservation:
    timeout_s = readiness_timeout_of(pod)
    if timeout_s is None or container.get("ready") or has_been_ready(pod):
        return replace(base, state=ReplicaState.RUNNING)
    probe = _probe_description(pod)
    if base.started_at is not None and now - base.started_at >= timeout_s:
        reason = f"not ready after {timeout_s:g}s: its readiness probe ({probe}) never passed"
        if log_tail:
            reason += f"; last log lines:\n{log_tail.rstrip()}"
        return replace(base, state=ReplicaState.FAILED, reason=reason)
    return replace(base, state=ReplicaState.STARTING, reason=f"waiting for its readiness probe ({probe})")


def readiness_timeout_of(pod: Manifest) -> float | None:
    """Seconds the pod's replica may take to become ready; None for a pod without ports (no probe)."""
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    raw = annotations.get(naming.READINESS_TIMEOUT_ANNOTATION)
    try:
        return float(raw) if raw is not None else None
    except ValueError:
        return None


def has_been_ready(pod: Manifest) -> bool:
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    return naming.READY_AT_ANNOTATION in annotations


def is_ready(pod: Manifest) -> bool:
    """The main container runs and its readiness probe passes (what the Service routes by)."""
    running = (pod.get("status") or {}).get("phase") == "Running"
    return running and bool(_main_container_status(pod).get("ready"))


def readiness_deadline(pod: Manifest) -> float | None:
    """When a running replica that waits for its readiness probe fails, if it is still not ready then."""
    timeout_s = readiness_timeout_of(pod)
    if timeout_s is None or is_ready(pod) or has_been_ready(pod):
        return None
    running = (_main_container_status(pod).get("state") or {}).get("running") or {}
    started = timestamp(running.get("startedAt"))
    return None if started is None else started + timeout_s


def _probe_description(pod: Manifest) -> str:
    containers = (pod.get("spec") or {}).get("containers") or [{}]
    probe = containers[0].get("readinessProbe") or {}
    if "httpGet" in probe:
        return f"GET {probe['httpGet'].get('path', '/')} on port {probe['httpGet'].get('port')}"
    if "tcpSocket" in probe:
        return f"a connection to port {probe['tcpSocket'].get('port')}"
    return "its probe"


def image_pull_reason(image: str, message: str) -> tuple[ReplicaState, str]:
    """A permanent pull failure fails the replica with a clear reason; anything else is retried."""
    if _NOT_FOUND.search(message):
        return ReplicaState.FAILED, f"image {image} not found in registry"
    if _DENIED.search(message):
        return (
            ReplicaState.FAILED,
            f"image {image}: the registry denied access (check image_pull_secrets)",
        )
    detail = f": {message}" if message else ""
    return ReplicaState.STARTING, f"pulling image {image} failed, retrying{detail}"


# --------------------------------------------------------------------------------------------- helpers


def assign_indices(pods: Iterable[Manifest], replicas: int) -> tuple[dict[int, Manifest], Manifest | None]:
    """Pods by replica index, and the MPI launcher pod if there is one."""
    by_index: dict[int, Manifest] = {}
    launcher: Manifest | None = None
    interchangeable: list[Manifest] = []
    for pod in pods:
        index = pod_replica_index(pod)
        if index == LAUNCHER:
            launcher = pod
        elif index is None:
            interchangeable.append(pod)
        elif index < replicas and _newer(pod, by_index.get(index)):
            by_index[index] = pod
    # Deployment pods carry no index: number them by age, pods on their way out (rolling update) last.
    interchangeable.sort(
        key=lambda pod: (
            bool((pod.get("metadata") or {}).get("deletionTimestamp")),
            (pod.get("metadata") or {}).get("creationTimestamp") or "",
            (pod.get("metadata") or {}).get("name") or "",
        )
    )
    free = [index for index in range(replicas) if index not in by_index]
    for index, pod in zip(free, interchangeable, strict=False):
        by_index[index] = pod
    return by_index, launcher


def _newer(pod: Manifest, other: Manifest | None) -> bool:
    if other is None:
        return True
    created = (pod.get("metadata") or {}).get("creationTimestamp") or ""
    return bool(created >= ((other.get("metadata") or {}).get("creationTimestamp") or ""))


def _missing(objects: WorkloadObjects, index: int, stop_reason: str | None) -> ReplicaObservation:
    if stop_reason:
        return ReplicaObservation(objects.workload_id, index, ReplicaState.STOPPED, reason=stop_reason)
    if objects.root is None:
        return ReplicaObservation(
            objects.workload_id,
            index,
            ReplicaState.LOST,
            reason="its Kubernetes objects were deleted outside AstraGo",
        )
    outcome = _finished_condition(objects.root)
    if outcome is not None:
        state, reason = outcome
        return ReplicaObservation(objects.workload_id, index, state, reason=reason)
    return ReplicaObservation(
        objects.workload_id, index, ReplicaState.STARTING, reason="waiting for Kubernetes to create the pod"
    )


def _finished_condition(root: Manifest) -> tuple[ReplicaState, str | None] | None:
    """A Job (or MPIJob) that finished, read from its conditions: its pods may be gone already."""
    for condition in (root.get("status") or {}).get("conditions") or ():
        if condition.get("status") != "True":
            continue
        if condition.get("type") in ("Complete", "Succeeded"):
            return ReplicaState.SUCCEEDED, None
        if condition.get("type") == "Failed":
            reason = condition.get("reason") or "Failed"
            if reason == "DeadlineExceeded":
                return ReplicaState.FAILED, "exceeded its maximum runtime"
            return ReplicaState.FAILED, f"{reason}: {condition.get('message') or 'the controller gave up'}"
    return None


def _finish_by_launcher(
    workload_id: str,
    launcher: Manifest,
    workers: list[ReplicaObservation],
    nodes: Collection[str],
    stop_reason: str | None,
    *,
    now: float,
) -> list[ReplicaObservation]:
    """MPI workers only serve mpirun; the launcher's end is the job's end, for every replica."""
    outcome = observe_pod(workload_id, 0, launcher, nodes, stop_reason, now=now)
    if outcome.state in (ReplicaState.SUCCEEDED, ReplicaState.FAILED, ReplicaState.STOPPED):
        return [
            ReplicaObservation(
                workload_id,
                worker.replica_index,
                outcome.state,
                exit_code=outcome.exit_code,
                reason=f"launcher: {outcome.reason}" if outcome.reason else None,
                node=worker.node,
                started_at=worker.started_at,
                finished_at=outcome.finished_at,
            )
            for worker in workers
        ]
    return workers


def _main_container_status(pod: Manifest) -> Manifest:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    if not statuses:
        return {}
    containers = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or ()]
    first = containers[0] if containers else None
    return next((s for s in statuses if s.get("name") == first), statuses[0])


def _container_image(pod: Manifest) -> str:
    containers = (pod.get("spec") or {}).get("containers") or [{}]
    return str(containers[0].get("image") or _main_container_status(pod).get("image") or "?")


def _failure_reason(pod: Manifest, terminated: Manifest) -> str:
    status = pod.get("status") or {}
    if terminated.get("reason") == "OOMKilled":
        limit = _memory_limit(pod)
        return f"out of memory (OOMKilled){f' at the {limit} limit' if limit else ''}"
    if status.get("reason") == "DeadlineExceeded":
        return "exceeded its maximum runtime"
    if status.get("reason") == "Evicted":
        return f"evicted by the kubelet: {status.get('message') or 'node under pressure'}"
    if terminated:
        code = terminated.get("exitCode")
        detail = terminated.get("message") or terminated.get("reason") or ""
        return f"exited with code {code}{f' ({detail})' if detail and detail != 'Error' else ''}"
    return str(status.get("message") or status.get("reason") or "the pod failed")


def _memory_limit(pod: Manifest) -> str | None:
    containers = (pod.get("spec") or {}).get("containers") or [{}]
    return ((containers[0].get("resources") or {}).get("limits") or {}).get("memory")


def _waiting(pod: Manifest, waiting: Manifest, base: ReplicaObservation) -> ReplicaObservation:
    reason = waiting.get("reason") or ""
    message = waiting.get("message") or ""
    image = _container_image(pod)
    if reason in _IMAGE_PULL_REASONS:
        state, text = image_pull_reason(image, message)
        return replace(base, state=state, reason=text)
    if reason == "InvalidImageName":
        return replace(base, state=ReplicaState.FAILED, reason=f"image name {image} is not valid")
    if reason == "CrashLoopBackOff":
        last = (_main_container_status(pod).get("lastState") or {}).get("terminated") or {}
        code = last.get("exitCode")
        return replace(
            base,
            state=ReplicaState.FAILED,
            exit_code=code,
            reason=f"keeps crashing (last exit code {code}, {last.get('reason') or 'Error'})",
        )
    detail = f"{reason}: {message}" if message else reason or "ContainerCreating"
    return replace(base, state=ReplicaState.STARTING, reason=detail)


def _pending_reason(pod: Manifest) -> str:
    for condition in (pod.get("status") or {}).get("conditions") or ():
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            detail = condition.get("message") or condition.get("reason") or "unschedulable"
            return f"waiting for a node: {detail}"
    return "starting"
