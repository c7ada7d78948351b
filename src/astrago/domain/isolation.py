"""How workloads are isolated from the platform and from each other, as the backend reports it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class IsolationMode(StrEnum):
    SANDBOXED = "sandboxed"  # every workload runs isolated from the platform and from other workloads
    # no sandbox: a workload could read the platform's state, so only admins may run workloads
    SINGLE_USER = "single-user"


@dataclass(frozen=True, slots=True)
class IsolationStatus:
    """Shown in the start banner and at `GET /api/v1/system`; single-user mode refuses non-admin submits."""

    mode: IsolationMode
    detail: str  # what isolates workloads, or why nothing can
    runs_as: str  # which OS account a workload runs as
    how_to_enable: str | None = None  # only in single-user mode

    @property
    def single_user(self) -> bool:
        return self.mode is IsolationMode.SINGLE_USER


KUBERNETES_ISOLATION = IsolationStatus(
    mode=IsolationMode.SANDBOXED,
    detail="Kubernetes pods, walled off from the platform by the chart's NetworkPolicies",
    runs_as="the pod's security context",
)
