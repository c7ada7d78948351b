"""What `open` checks before AstraGo relies on a cluster: the API server answers, the namespace exists,
the credentials may do everything the backend does (SelfSubjectAccessReview, as `kubectl auth can-i`),
and which optional parts are installed (the MPI Operator's CRD, the configured StorageClass)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx2
from lightkube import AsyncClient
from lightkube.models.authorization_v1 import ResourceAttributes, SelfSubjectAccessReviewSpec
from lightkube.resources.authorization_v1 import SelfSubjectAccessReview
from lightkube.resources.core_v1 import Namespace
from lightkube.resources.storage_v1 import StorageClass

from astrago.backends.base import BackendError
from astrago.backends.kubernetes.errors import RBAC_HINT, describe, is_not_found, status_code, unreachable
from astrago.backends.kubernetes.resources import MPIJob


@dataclass(frozen=True, slots=True)
class Permission:
    group: str
    resource: str
    verb: str
    namespaced: bool = True

    def __str__(self) -> str:
        qualified = f"{self.resource}.{self.group}" if self.group else self.resource
        return f"{self.verb} {qualified}"


def _grant(group: str, resource: str, verbs: str, namespaced: bool = True) -> list[Permission]:
    return [Permission(group, resource, verb, namespaced) for verb in verbs.split()]


REQUIRED_PERMISSIONS: tuple[Permission, ...] = (
    *_grant("", "pods", "get list watch create delete patch"),
    *_grant("", "pods/log", "get"),
    *_grant("", "pods/exec", "create"),
    *_grant("", "services", "get list create delete"),
    *_grant("", "persistentvolumeclaims", "get list create"),
    *_grant("batch", "jobs", "get list create delete patch"),
    *_grant("apps", "deployments", "get list create delete patch"),
    *_grant("", "nodes", "get list watch", namespaced=False),
)
MPI_PERMISSIONS: tuple[Permission, ...] = tuple(
    _grant("kubeflow.org", "mpijobs", "get list create delete patch")
)

MPI_OPERATOR_HINT = (
    "the cluster does not serve MPIJob (kubeflow.org/v2beta1): install the MPI Operator v0.5 or later "
    "(kubectl apply --server-side -f https://raw.githubusercontent.com/kubeflow/mpi-operator/v0.5.0/deploy/"
    "v2beta1/mpi-operator.yaml, or `astrago deploy`, which installs it)"
)


@dataclass(frozen=True, slots=True)
class ClusterFacts:
    mpi_operator: bool
    storage_class: bool | None  # None: AstraGo may not read StorageClasses, so it could not tell
    missing_mpi_permissions: tuple[Permission, ...] = ()


async def check_reachable(client: AsyncClient, namespace: str, server: str) -> None:
    try:
        await client.get(Namespace, namespace)
    except httpx2.TransportError as exc:
        raise BackendError(unreachable(server, exc)) from exc
    except httpx2.HTTPStatusError as exc:
        if is_not_found(exc):
            raise BackendError(
                f"namespace {namespace!r} does not exist on {server}: create it "
                f"(kubectl create namespace {namespace}) or choose another with --namespace"
            ) from exc
        if status_code(exc) != 403:  # reading namespaces is not needed; anything else is a real problem
            raise BackendError(describe(exc, f"read namespace {namespace}", server)) from exc


async def missing_permissions(
    client: AsyncClient, namespace: str, permissions: tuple[Permission, ...]
) -> list[Permission]:
    results = await asyncio.gather(*(_allowed(client, namespace, p) for p in permissions))
    return [permission for permission, allowed in zip(permissions, results, strict=True) if not allowed]


async def _allowed(client: AsyncClient, namespace: str, permission: Permission) -> bool:
    resource, _, subresource = permission.resource.partition("/")
    review = SelfSubjectAccessReview(
        spec=SelfSubjectAccessReviewSpec(
            resourceAttributes=ResourceAttributes(
                group=permission.group,
                resource=resource,
                subresource=subresource or None,
                verb=permission.verb,
                namespace=namespace if permission.namespaced else None,
            )
        )
    )
    answer = await client.create(review)
    return bool(answer.status is not None and answer.status.allowed)


def permission_error(missing: list[Permission], namespace: str) -> BackendError:
    listed = ", ".join(str(p) for p in missing)
    return BackendError(
        f"AstraGo's Kubernetes credentials lack: {listed} (namespace {namespace}); {RBAC_HINT}"
    )


async def serves_mpijob(client: AsyncClient, namespace: str) -> bool:
    try:
        async for _ in client.list(MPIJob, namespace=namespace, chunk_size=1):
            break
    except httpx2.HTTPStatusError as exc:
        if is_not_found(exc):
            return False
        raise
    return True


async def storage_class_exists(client: AsyncClient, name: str) -> bool | None:
    try:
        await client.get(StorageClass, name)
    except httpx2.HTTPStatusError as exc:
        if is_not_found(exc):
            return False
        if status_code(exc) == 403:
            return None
        raise
    return True


def storage_class_error(name: str) -> BackendError:
    return BackendError(
        f"StorageClass {name!r} does not exist: install a CSI driver that provides it (the NFS CSI driver "
        "csi-driver-nfs with a StorageClass of that name, as `astrago deploy` sets up) or set "
        "ASTRAGO_STORAGE_CLASS to an existing class (kubectl get storageclass)"
    )
