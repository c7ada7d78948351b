"""The Kubernetes backend (`astrago server --backend kubernetes`): see docs/kubernetes.md."""

from astrago.backends.kubernetes.backend import Endpoint, ExecResult, KubernetesBackend, Orphan, OrphanPolicy

__all__ = ["Endpoint", "ExecResult", "KubernetesBackend", "Orphan", "OrphanPolicy"]
