"""Deterministic object names and the labels every AstraGo object carries.

Names derive from the workload id alone, so a restarted server (or a retried `start`) computes the same
names and finds what an earlier run created instead of creating it twice."""

from __future__ import annotations

import hashlib
import re

APP_NAME_LABEL = "app.kubernetes.io/name"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
WORKLOAD_LABEL = "astrago.io/workload"
WORKSPACE_LABEL = "astrago.io/workspace"
ROLE_LABEL = "astrago.io/role"  # root | replica | launcher | service | volume

# Label values are limited to 63 safe characters, so the exact id and name live in annotations.
WORKLOAD_ID_ANNOTATION = "astrago.io/workload-id"
WORKLOAD_NAME_ANNOTATION = "astrago.io/name"
KIND_ANNOTATION = "astrago.io/kind"
REPLICAS_ANNOTATION = "astrago.io/replicas"
REPLICA_ANNOTATION = "astrago.io/replica"  # on pods AstraGo creates directly (one pod = one replica)
STOP_REASON_ANNOTATION = "astrago.io/stop-reason"
# A replica with ports is RUNNING once its readiness probe passes, and fails if that takes longer than this
# (seconds); the backend marks a pod that passed once, so a later failed probe (taken out of the Service's
# rotation) does not turn it back into a starting replica, also after a server restart.
READINESS_TIMEOUT_ANNOTATION = "astrago.io/readiness-timeout"
READY_AT_ANNOTATION = "astrago.io/ready-at"

APP_NAME = "astrago"
MANAGER = "astrago"
MANAGED_SELECTOR = {MANAGED_BY_LABEL: MANAGER}

# Room for the suffixes Kubernetes appends: "-<index>" on Indexed Job pods, "-worker-<n>" on MPIJob pods,
# and the pod hostname of an Indexed Job must stay a 63-character DNS label.
_MAX_BASE = 40
_UNSAFE = re.compile(r"[^a-z0-9-]+")
_LABEL_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def _digest(text: str, length: int = 8) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def object_name(workload_id: str) -> str:
    """The name of a workload's root object (Job, MPIJob, Pod, Deployment) and of its Service.

    A DNS-1035 label (starts with a letter, as Services require); ids that do not fit verbatim are
    shortened with a digest of the full id so two ids never share a name."""
    cleaned = _UNSAFE.sub("-", workload_id.lower()).strip("-")
    base = f"ag-{cleaned}"
    if cleaned != workload_id or len(base) > _MAX_BASE:
        base = f"{base[: _MAX_BASE - 9].rstrip('-')}-{_digest(workload_id)}"
    return base


def label_value(text: str) -> str:
    """A valid label value carrying `text`, or a readable prefix plus a digest when it does not fit."""
    cleaned = _LABEL_UNSAFE.sub("-", text).strip("-_.")
    if cleaned == text and len(text) <= 63:
        return text
    return f"{cleaned[:54].rstrip('-_.')}-{_digest(text)}".lstrip("-_.")


def workload_labels(workload_id: str, workspace: str, role: str) -> dict[str, str]:
    return {
        APP_NAME_LABEL: APP_NAME,
        MANAGED_BY_LABEL: MANAGER,
        WORKLOAD_LABEL: label_value(workload_id),
        WORKSPACE_LABEL: label_value(workspace),
        ROLE_LABEL: role,
    }


def selector_for(workload_id: str) -> dict[str, str]:
    return {MANAGED_BY_LABEL: MANAGER, WORKLOAD_LABEL: label_value(workload_id)}
