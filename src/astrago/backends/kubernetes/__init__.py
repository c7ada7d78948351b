"""The Kubernetes backend (`astrago server --backend kubernetes`): see docs/kubernetes.md."""

from astrago.backends.kubernetes.backend import ExecResult, KubernetesBackend, Orphan, OrphanPolicy

__all__ = ["ExecResult", "KubernetesBackend", "Orphan", "OrphanPolicy"]
