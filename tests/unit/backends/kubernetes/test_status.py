"""Pods (as the API server returns them) → replica observations."""

from __future__ import annotations

from typing import Any

import pytest

from astrago.backends.kubernetes import naming
from astrago.backends.kubernetes.status import (
    WorkloadObjects,
    image_pull_reason,
    observe_pod,
    observe_workload,
    pod_replica_index,
    readiness_deadline,
)
from astrago.domain.enums import ReplicaState

NODES = {"gpu-1", "gpu-2"}
T0 = "2026-01-01T10:00:00Z"
T1 = "2026-01-01T11:00:00Z"
NOW = 1767261600.0  # T0 (2026-01-01T10:00:00Z)


def pod(
    name: str = "p",
    *,
    phase: str = "Running",
    node: str | None = "gpu-1",
    state: dict[str, Any] | None = None,
    index: int | None = 0,
    labels: dict[str, str] | None = None,
    image: str = "pytorch/pytorch:2.3",
    created: str = T0,
    **status: Any,
) -> dict[str, Any]:
    annotations = {naming.WORKLOAD_ID_ANNOTATION: "w", naming.REPLICAS_ANNOTATION: "2"}
    if index is not None:
        annotations["batch.kubernetes.io/job-completion-index"] = str(index)
    container_status = [{"name": "main", "image": image, "state": state}] if state else []
    return {
        "metadata": {
            "name": name,
            "annotations": annotations,
            "labels": labels or {},
            "creationTimestamp": created,
        },
        "spec": {
            "nodeName": node,
            "containers": [{"name": "main", "image": image, "resources": {"limits": {"memory": "16Gi"}}}],
        },
        "status": {"phase": phase, "containerStatuses": container_status, **status},
    }


def test_running_succeeded_failed_with_exit_codes_and_times() -> None:
    running = observe_pod("w", 0, pod(state={"running": {"startedAt": T0}}), NODES, now=NOW)
    assert running.state is ReplicaState.RUNNING
    assert running.node == "gpu-1"
    assert running.started_at
    done = observe_pod(
        "w",
        0,
        pod(phase="Succeeded", state={"terminated": {"exitCode": 0, "startedAt": T0, "finishedAt": T1}}),
        NODES,
        now=NOW,
    )
    assert done.state is ReplicaState.SUCCEEDED
    assert done.exit_code == 0
    assert done.finished_at is not None
    assert done.started_at is not None
    assert done.finished_at - done.started_at == 3600
    failed = observe_pod(
        "w", 0, pod(phase="Failed", state={"terminated": {"exitCode": 3, "reason": "Error"}}), NODES, now=NOW
    )
    assert failed.state is ReplicaState.FAILED
    assert failed.exit_code == 3
    assert failed.reason == "exited with code 3"


def test_oom_killed_names_the_memory_limit() -> None:
    observation = observe_pod(
        "w",
        0,
        pod(phase="Failed", state={"terminated": {"exitCode": 137, "reason": "OOMKilled"}}),
        NODES,
        now=NOW,
    )
    assert observation.state is ReplicaState.FAILED
    assert observation.exit_code == 137
    assert observation.reason == "out of memory (OOMKilled) at the 16Gi limit"


def test_image_not_found_is_a_clear_failure() -> None:
    message = (
        "rpc error: code = NotFound desc = failed to pull and unpack image "
        '"docker.io/mpioperator/mpi-operator:0.5.0": failed to resolve reference: '
        '"docker.io/mpioperator/mpi-operator:0.5.0": not found'
    )
    observation = observe_pod(
        "w",
        0,
        pod(
            phase="Pending",
            image="mpioperator/mpi-operator:0.5.0",
            state={"waiting": {"reason": "ImagePullBackOff", "message": message}},
        ),
        NODES,
        now=NOW,
    )
    assert observation.state is ReplicaState.FAILED
    assert observation.reason == "image mpioperator/mpi-operator:0.5.0 not found in registry"


@pytest.mark.parametrize(
    ("message", "state", "fragment"),
    [
        (
            "pull access denied, repository does not exist or may require authorization",
            ReplicaState.FAILED,
            "not found",
        ),
        ("unexpected status: 401 Unauthorized", ReplicaState.FAILED, "denied access"),
        ("dial tcp 10.0.0.5:443: i/o timeout", ReplicaState.STARTING, "retrying"),
    ],
)
def test_image_pull_reasons(message: str, state: ReplicaState, fragment: str) -> None:
    got_state, reason = image_pull_reason("team/app:1", message)
    assert got_state is state
    assert fragment in reason
    assert "team/app:1" in reason


def test_pending_pods_say_why() -> None:
    unschedulable = pod(
        phase="Pending",
        node=None,
        conditions=[{"type": "PodScheduled", "status": "False", "message": "0/2 nodes: untolerated taint"}],
    )
    observation = observe_pod("w", 0, unschedulable, NODES, now=NOW)
    assert observation.state is ReplicaState.STARTING
    assert observation.reason == "waiting for a node: 0/2 nodes: untolerated taint"
    creating = observe_pod(
        "w", 0, pod(phase="Pending", state={"waiting": {"reason": "ContainerCreating"}}), NODES, now=NOW
    )
    assert creating.state is ReplicaState.STARTING
    assert creating.reason == "ContainerCreating"


def test_a_pod_on_a_vanished_node_is_lost() -> None:
    observation = observe_pod("w", 0, pod(node="gpu-9", state={"running": {"startedAt": T0}}), NODES, now=NOW)
    assert observation.state is ReplicaState.LOST
    assert observation.reason == "node gpu-9 is gone from the cluster"
    unknown = observe_pod("w", 0, pod(phase="Unknown"), NODES, now=NOW)
    assert unknown.state is ReplicaState.LOST


def test_crash_loops_and_deadline_fail() -> None:
    looping = pod(state={"waiting": {"reason": "CrashLoopBackOff"}})
    looping["status"]["containerStatuses"][0]["lastState"] = {
        "terminated": {"exitCode": 1, "reason": "Error"}
    }
    observation = observe_pod("w", 0, looping, NODES, now=NOW)
    assert observation.state is ReplicaState.FAILED
    assert observation.exit_code == 1
    deadline = observe_pod("w", 0, pod(phase="Failed", reason="DeadlineExceeded"), NODES, now=NOW)
    assert deadline.reason == "exceeded its maximum runtime"


def test_stopped_replicas_report_the_stop_reason() -> None:
    killed = pod(phase="Failed", state={"terminated": {"exitCode": 143}})
    observation = observe_pod("w", 0, killed, NODES, stop_reason="preempted by w2", now=NOW)
    assert observation.state is ReplicaState.STOPPED
    assert observation.reason == "preempted by w2"
    # after a restart the reason comes from the root object's annotation; pods already gone count as stopped
    root = {"metadata": {"annotations": {naming.STOP_REASON_ANNOTATION: "cancelled by alice"}}}
    observations = observe_workload(WorkloadObjects("w", 2, root=root, pods=[killed]), NODES, now=NOW)
    assert [o.state for o in observations] == [ReplicaState.STOPPED, ReplicaState.STOPPED]
    assert {o.reason for o in observations} == {"cancelled by alice"}


def test_missing_pods_follow_their_root_starting_failed_succeeded_or_lost() -> None:
    root = {"metadata": {}}
    (observation,) = observe_workload(WorkloadObjects("w", 1, root=root), NODES, now=NOW)
    assert observation.state is ReplicaState.STARTING
    root = {
        "metadata": {},
        "status": {"conditions": [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}]},
    }
    (observation,) = observe_workload(WorkloadObjects("w", 1, root=root), NODES, now=NOW)
    assert observation.state is ReplicaState.FAILED
    assert observation.reason == "exceeded its maximum runtime"
    (observation,) = observe_workload(WorkloadObjects("w", 1, root=None), NODES, now=NOW)
    assert observation.state is ReplicaState.LOST
    completed = {"metadata": {}, "status": {"conditions": [{"type": "Complete", "status": "True"}]}}
    (observation,) = observe_workload(WorkloadObjects("w", 1, root=completed), NODES, now=NOW)
    assert observation.state is ReplicaState.SUCCEEDED  # its pods were removed after it completed


def test_mpi_launcher_ends_every_replica() -> None:
    role = "training.kubeflow.org/job-role"
    workers = [
        pod(
            f"w-{i}",
            index=None,
            labels={role: "worker", "training.kubeflow.org/replica-index": str(i)},
            state={"running": {"startedAt": T0}},
        )
        for i in range(2)
    ]
    launcher = pod("launcher", index=None, labels={role: "launcher"}, state={"running": {"startedAt": T0}})
    assert pod_replica_index(workers[1]) == 1
    assert pod_replica_index(launcher) == -1
    running = observe_workload(WorkloadObjects("w", 2, root={}, pods=[launcher, *workers]), NODES, now=NOW)
    assert [o.state for o in running] == [ReplicaState.RUNNING, ReplicaState.RUNNING]
    launcher = pod(
        "launcher",
        phase="Failed",
        index=None,
        labels={role: "launcher"},
        state={"terminated": {"exitCode": 2}},
    )
    failed = observe_workload(WorkloadObjects("w", 2, root={}, pods=[launcher, *workers]), NODES, now=NOW)
    assert [(o.state, o.exit_code) for o in failed] == [(ReplicaState.FAILED, 2)] * 2
    assert failed[0].reason == "launcher: exited with code 2"


def test_deployment_pods_are_numbered_by_age_and_old_ones_last() -> None:
    old = pod("svc-a", index=None, created=T0, state={"running": {"startedAt": T0}})
    old["metadata"]["deletionTimestamp"] = T1
    new = pod("svc-b", index=None, created=T1, node="gpu-2", state={"running": {"startedAt": T1}})
    other = pod("svc-c", index=None, created=T0, state={"running": {"startedAt": T0}})
    observations = observe_workload(WorkloadObjects("w", 2, root={}, pods=[old, new, other]), NODES, now=NOW)
    assert [o.node for o in observations] == ["gpu-1", "gpu-2"]  # svc-c (oldest live), then svc-b


def _serving(*, ready: bool, ready_before: bool = False, timeout_s: str = "60") -> dict[str, Any]:
    served = pod(state={"running": {"startedAt": T0}})
    served["metadata"]["annotations"][naming.READINESS_TIMEOUT_ANNOTATION] = timeout_s
    if ready_before:
        served["metadata"]["annotations"][naming.READY_AT_ANNOTATION] = T0
    served["spec"]["containers"][0]["readinessProbe"] = {"httpGet": {"path": "/healthz", "port": 8000}}
    served["status"]["containerStatuses"][0]["ready"] = ready
    return served


def test_a_replica_with_ports_runs_only_once_its_readiness_probe_passes() -> None:
    waiting = observe_pod("w", 0, _serving(ready=False), NODES, now=NOW + 30)
    assert (waiting.state, waiting.reason) == (
        ReplicaState.STARTING,
        "waiting for its readiness probe (GET /healthz on port 8000)",
    )
    assert readiness_deadline(_serving(ready=False)) == NOW + 60
    assert observe_pod("w", 0, _serving(ready=True), NODES, now=NOW + 30).state is ReplicaState.RUNNING
    assert readiness_deadline(_serving(ready=True)) is None
    # ready once, then a failed probe: out of the Service's rotation, but still a running replica
    unhealthy = observe_pod("w", 0, _serving(ready=False, ready_before=True), NODES, now=NOW + 3600)
    assert unhealthy.state is ReplicaState.RUNNING


def test_a_replica_never_ready_fails_after_its_readiness_timeout() -> None:
    failed = observe_pod("w", 0, _serving(ready=False, timeout_s="60"), NODES, now=NOW + 60)
    assert failed.state is ReplicaState.FAILED
    assert (
        failed.reason == "not ready after 60s: its readiness probe (GET /healthz on port 8000) never passed"
    )
    plain = observe_pod("w", 0, pod(state={"running": {"startedAt": T0}}), NODES, now=NOW + 86400)
    assert plain.state is ReplicaState.RUNNING  # no ports, no probe: running as soon as it runs
