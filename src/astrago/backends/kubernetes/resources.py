"""The Kubernetes resource types AstraGo creates or reads, by kind."""

from __future__ import annotations

from typing import Any

from lightkube.generic_resource import create_namespaced_resource
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import PersistentVolumeClaim, Pod, Service

MPIJob = create_namespaced_resource("kubeflow.org", "v2beta1", "MPIJob", "mpijobs")

# Root kinds own a workload's pods; the order is the order `stop` and `observe` look them up in.
ROOT_KINDS: dict[str, Any] = {"Job": Job, "MPIJob": MPIJob, "Deployment": Deployment, "Pod": Pod}
BY_KIND: dict[str, Any] = {**ROOT_KINDS, "Service": Service, "PersistentVolumeClaim": PersistentVolumeClaim}


def resource_for(kind: str) -> Any:
    return BY_KIND[kind]
