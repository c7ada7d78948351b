"""The alerting vocabulary and its pure rules: rules, severities, channels, retry backoff, idleness.

Nothing here touches the database or the network, so every rule is tested on its own."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class AlertRule(StrEnum):
    """The built-in rules. Other parts of the platform may raise alerts under these names."""

    GPU_IDLE = "gpu-idle"  # a running workload holds GPUs it barely uses
    WORKLOAD_PENDING = "workload-pending"  # a workload has waited in the queue too long
    QUOTA_HIGH = "quota-high"  # a workspace uses most of its GPU limit
    GPU_UNHEALTHY = "gpu-unhealthy"  # raised by GPU health fencing
    NODE_LOST = "node-lost"  # a node stopped reporting
    JOB_FAILED = "job-failed"  # a workload ended FAILED
    IDLE_RECLAIM = "idle-reclaim"  # an idle workload will be stopped (the T-15 min warning)


# Rules whose thresholds the background evaluator checks (the others are raised by their owners).
EVALUATED_RULES = (
    AlertRule.GPU_IDLE,
    AlertRule.WORKLOAD_PENDING,
    AlertRule.QUOTA_HIGH,
    AlertRule.NODE_LOST,
    AlertRule.JOB_FAILED,
)


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return {"info": 0, "warning": 1, "critical": 2}[self.value]


class AlertState(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


class ChannelKind(StrEnum):
    WEBHOOK = "webhook"  # JSON POST, HMAC-SHA256 signed
    EMAIL = "email"  # SMTP
    APPRISE = "apprise"  # any service Apprise speaks (Slack, Teams, Mattermost, Telegram, ...)


class DeliveryEvent(StrEnum):
    FIRED = "fired"
    RESOLVED = "resolved"


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # waiting for its (next) attempt
    DELIVERED = "delivered"
    FAILED = "failed"  # every attempt failed


def open_key(rule: str, key: str) -> str:
    """What makes an alert unique while it fires (one open alert per rule and key)."""
    return f"{rule}\x1f{key}"


def retry_delay_s(attempts: int, base_s: float, cap_s: float) -> float:
    """Exponential backoff after `attempts` failed attempts: base, 2·base, 4·base, ... at most cap."""
    return float(min(cap_s, base_s * 2 ** max(0, attempts - 1)))


@dataclass(frozen=True)
class RuleThreshold:
    """An evaluated rule's settings: whether it runs, its threshold (a percentage; unused by rules
    without one) and how long the condition must hold before it fires."""

    enabled: bool
    threshold: float | None
    for_s: float | None


@dataclass(frozen=True)
class IdleRule:
    """An idle-reclaim policy's numbers."""

    gpu_util_below_percent: float
    idle_for_s: float
    warn_before_s: float
    postpone_s: float
    max_postpone_s: float

    @property
    def warn_after_s(self) -> float:
        """How long a workload must have been idle for its warning: the stop comes warn_before_s later."""
        return max(0.0, self.idle_for_s - self.warn_before_s)


@dataclass(frozen=True)
class IdleEvidence:
    """What is known of one running workload over a window ending now."""

    running_since: datetime
    last_request_at: datetime | None  # through the gateway; None: no request recorded
    mean_gpu_percent: float | None  # None: no attributable samples in the window
    samples: int


def is_idle(evidence: IdleEvidence, since: datetime, below_percent: float) -> bool:
    """Idle over [since, now]: running for the whole window, no endpoint request in it, and GPU samples
    that show mean utilisation under the threshold. Without samples nothing is proven idle: a workload
    whose use cannot be measured (MIG, no telemetry) is never reclaimed."""
    if evidence.running_since > since:
        return False
    if evidence.last_request_at is not None and evidence.last_request_at >= since:
        return False
    if evidence.mean_gpu_percent is None or evidence.samples == 0:
        return False
    return evidence.mean_gpu_percent < below_percent


def postponed_stop(stop_at: datetime, now: datetime, postpone_s: float, latest: datetime) -> datetime | None:
    """The new stop time after "keep running", or None when the hard cap is already reached."""
    if stop_at >= latest:
        return None
    return min(latest, max(stop_at, now) + timedelta(seconds=postpone_s))
