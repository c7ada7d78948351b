"""Request and response bodies of the alerts API (channel secrets never appear in a response)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, StrictBool, StrictFloat, StrictInt

from astrago.domain.enums import WorkloadKind
from astrago.monitor.alerts.rules import (
    AlertRule,
    AlertState,
    ChannelKind,
    DeliveryEvent,
    DeliveryStatus,
    Severity,
)
from astrago.services.schemas import NAME_PATTERN, USERNAME_PATTERN, Strict

ChannelName = Annotated[str, Field(pattern=NAME_PATTERN)]
Seconds = Annotated[StrictFloat | StrictInt, Field(gt=0, le=366 * 86400)]


class AlertOut(BaseModel):
    id: int
    rule: str
    key: str
    state: AlertState
    severity: Severity
    summary: str
    resolution: str | None
    workspace: str | None
    workload_id: str | None
    node: str | None
    opened_at: datetime
    resolved_at: datetime | None


class AlertPageOut(BaseModel):
    items: list[AlertOut]
    open_count: int  # open alerts the caller may see (the console's bell)


class ChannelCreate(Strict):
    name: ChannelName
    kind: ChannelKind
    target: str = Field(
        min_length=1, max_length=2048, description="the webhook URL, the email address or the Apprise URL"
    )
    secret: str | None = Field(
        None,
        min_length=16,
        max_length=256,
        description="webhook signing secret (HMAC-SHA256); generated and shown once when left out",
    )


class ChannelOut(BaseModel):
    id: str
    name: str
    kind: ChannelKind
    target: str  # an Apprise URL shows only its scheme: the rest carries the service's credentials
    signed: bool  # a webhook whose requests carry a signature
    created_by: str | None
    created_at: datetime


class ChannelCreated(ChannelOut):
    secret: str | None = Field(None, description="the webhook's signing secret: shown this once only")


class SubscriptionCreate(Strict):
    channel: ChannelName
    workspace: str | None = Field(None, pattern=NAME_PATTERN, description="alerts of this workspace")
    user: str | None = Field(None, pattern=USERNAME_PATTERN, description="alerts of this user's workloads")
    all: StrictBool = Field(
        False, description="every alert, node alerts included (neither workspace nor user)"
    )
    rules: list[AlertRule] | None = Field(None, max_length=len(AlertRule), description="default: every rule")
    min_severity: Severity = Severity.INFO


class SubscriptionOut(BaseModel):
    id: str
    channel: str
    workspace: str | None
    user: str | None
    rules: list[AlertRule] | None
    min_severity: Severity
    created_at: datetime


class DeliveryOut(BaseModel):
    id: int
    alert_id: int
    rule: str
    channel: str
    event: DeliveryEvent
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None  # while pending
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


class RuleOut(BaseModel):
    rule: AlertRule
    enabled: bool
    threshold: float | None
    for_s: float | None
    description: str


class RuleSet(Strict):
    enabled: StrictBool | None = None
    threshold: StrictFloat | StrictInt | None = Field(None, ge=0, le=100)
    for_s: Seconds | None = None


class IdlePolicySet(Strict):
    workspace: str | None = Field(None, pattern=NAME_PATTERN, description="default: every workspace")
    kind: WorkloadKind = WorkloadKind.INTERACTIVE
    enabled: StrictBool = True
    gpu_util_below_percent: StrictFloat | StrictInt = Field(5, gt=0, le=100)
    idle_for_s: Seconds = 3600
    warn_before_s: Seconds = 900
    postpone_s: Seconds = 3600
    max_postpone_s: Annotated[StrictFloat | StrictInt, Field(ge=0, le=366 * 86400)] = 4 * 3600


class IdlePolicyOut(BaseModel):
    id: str | None  # None: the platform's default from the settings
    workspace: str | None
    kind: WorkloadKind
    enabled: bool
    gpu_util_below_percent: float
    idle_for_s: float
    warn_before_s: float
    postpone_s: float
    max_postpone_s: float


class ReclaimOut(BaseModel):
    """A pending idle reclaim of one workload (what the console's banner shows)."""

    workload_id: str
    warned_at: datetime
    stop_at: datetime
    latest_stop_at: datetime  # "keep running" cannot postpone past this
    can_postpone: bool
    kept_by: str | None
    kept_at: datetime | None
