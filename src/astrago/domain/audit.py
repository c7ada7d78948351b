"""What the audit trail can be searched by: one outcome per record, and the filters a search combines."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class AuditResult(StrEnum):
    """How an audited action ended."""

    OK = "ok"
    DENIED = "denied"  # refused: not signed in, no role, disabled, throttled
    INVALID = "invalid"  # refused: bad input or a conflicting state
    ERROR = "error"  # failed inside the platform


@dataclass(frozen=True)
class AuditFilter:
    """Records matching every field set (None: any). `action` is an action (`workload.submit`) or a
    family of actions (`workload` matches `workload.*`); `since` is inclusive, `until` exclusive."""

    actor: str | None = None
    action: str | None = None
    target: str | None = None
    workspace: str | None = None
    result: AuditResult | None = None
    since: datetime | None = None
    until: datetime | None = None

    def is_family(self) -> bool:
        return self.action is not None and "." not in self.action
