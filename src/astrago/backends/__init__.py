"""Backends run workloads: local processes on this machine, or objects in a Kubernetes cluster."""

from __future__ import annotations

from astrago.backends.base import Backend, BackendError
from astrago.config import Settings


def create_backend(settings: Settings) -> Backend:
    """The backend named in the settings (imported lazily: each pulls in its own libraries)."""
    if settings.backend == "kubernetes":
        from astrago.backends.kubernetes import KubernetesBackend

        return KubernetesBackend(settings)
    from astrago.backends.local import LocalBackend

    return LocalBackend(settings)


__all__ = ["Backend", "BackendError", "create_backend"]
