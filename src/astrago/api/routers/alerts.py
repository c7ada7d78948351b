"""Alerts, notification channels, subscriptions, the delivery log, rule thresholds, idle reclaim policies,
and a workload's pending reclaim ("keep running")."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from astrago.api.deps import PrincipalDep, ServicesDep
from astrago.domain.enums import WorkloadKind
from astrago.monitor.alerts.rules import AlertRule, AlertState, DeliveryStatus
from astrago.monitor.alerts.schemas import (
    AlertOut,
    AlertPageOut,
    ChannelCreate,
    ChannelCreated,
    ChannelOut,
    DeliveryOut,
    IdlePolicyOut,
    IdlePolicySet,
    ReclaimOut,
    RuleOut,
    RuleSet,
    SubscriptionCreate,
    SubscriptionOut,
)
from astrago.services.schemas import NAME_PATTERN

router = APIRouter(prefix="/api/v1", tags=["alerts"])
AlertId = Annotated[int, Path(ge=1, le=2**31 - 1)]
Limit = Annotated[int, Query(ge=1, le=500)]


@router.get("/alerts", response_model=AlertPageOut)
async def list_alerts(
    services: ServicesDep,
    principal: PrincipalDep,
    state: AlertState | None = None,
    limit: Limit = 100,
    before: Annotated[int | None, Query(ge=1, le=2**31 - 1, description="older than this alert id")] = None,
) -> AlertPageOut:
    """Alerts of your workspaces and workloads (admins: all), newest first, with the open count."""
    return await services.alerts.alerts(principal, state, limit, before)


@router.post("/alerts/{alert_id}/resolve", response_model=AlertOut)
async def resolve_alert(alert_id: AlertId, services: ServicesDep, principal: PrincipalDep) -> AlertOut:
    """Resolve an open alert by hand (its subscribers hear that it was resolved)."""
    return await services.alerts.close(principal, alert_id)


@router.get("/alert-channels", response_model=list[ChannelOut])
async def list_channels(services: ServicesDep, principal: PrincipalDep) -> list[ChannelOut]:
    return await services.alerts.channels(principal)


@router.post("/alert-channels", response_model=ChannelCreated, status_code=status.HTTP_201_CREATED)
async def add_channel(body: ChannelCreate, services: ServicesDep, principal: PrincipalDep) -> ChannelCreated:
    """A webhook's generated signing secret is in this response only."""
    return await services.alerts.add_channel(principal, body)


@router.delete("/alert-channels/{channel}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_channel(
    channel: Annotated[str, Path(pattern=NAME_PATTERN)], services: ServicesDep, principal: PrincipalDep
) -> Response:
    """Remove a channel with its subscriptions and delivery log (admins)."""
    await services.alerts.remove_channel(principal, channel)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/alert-subscriptions", response_model=list[SubscriptionOut])
async def list_subscriptions(services: ServicesDep, principal: PrincipalDep) -> list[SubscriptionOut]:
    return await services.alerts.subscriptions(principal)


@router.post("/alert-subscriptions", response_model=SubscriptionOut, status_code=status.HTTP_201_CREATED)
async def subscribe(
    body: SubscriptionCreate, services: ServicesDep, principal: PrincipalDep
) -> SubscriptionOut:
    return await services.alerts.subscribe(principal, body)


@router.delete("/alert-subscriptions/{subscription_id}", status_code=status.HTTP_204_NO_CONTENT)
async def unsubscribe(
    subscription_id: Annotated[str, Path(max_length=32)], services: ServicesDep, principal: PrincipalDep
) -> Response:
    await services.alerts.unsubscribe(principal, subscription_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/alert-deliveries", response_model=list[DeliveryOut])
async def list_deliveries(
    services: ServicesDep,
    principal: PrincipalDep,
    alert: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    channel: Annotated[str | None, Query(pattern=NAME_PATTERN)] = None,
    status: DeliveryStatus | None = None,
    limit: Limit = 100,
) -> list[DeliveryOut]:
    """The delivery log: each notification's status, attempts and last error (admins)."""
    return await services.alerts.deliveries(principal, alert, channel, status, limit)


@router.get("/alert-rules", response_model=list[RuleOut])
async def list_rules(services: ServicesDep, principal: PrincipalDep) -> list[RuleOut]:
    return await services.alerts.rules(principal)


@router.patch("/alert-rules/{rule}", response_model=RuleOut)
async def set_rule(rule: AlertRule, body: RuleSet, services: ServicesDep, principal: PrincipalDep) -> RuleOut:
    """Change a built-in rule's threshold, duration or whether it runs (admins)."""
    return await services.alerts.set_rule(principal, rule, body)


@router.get("/idle-policies", response_model=list[IdlePolicyOut])
async def list_idle_policies(services: ServicesDep, principal: PrincipalDep) -> list[IdlePolicyOut]:
    return await services.reclaim.policies(principal)


@router.put("/idle-policies", response_model=IdlePolicyOut)
async def set_idle_policy(
    body: IdlePolicySet, services: ServicesDep, principal: PrincipalDep
) -> IdlePolicyOut:
    """Create or replace the policy of one workspace (or every workspace) and kind (admins)."""
    return await services.reclaim.set_policy(principal, body)


@router.delete("/idle-policies/{kind}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_idle_policy(
    kind: WorkloadKind,
    services: ServicesDep,
    principal: PrincipalDep,
    workspace: Annotated[str | None, Query(pattern=NAME_PATTERN)] = None,
) -> Response:
    await services.reclaim.remove_policy(principal, workspace, kind)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/workloads/{workload_id}/reclaim", response_model=ReclaimOut | None)
async def pending_reclaim(
    workload_id: Annotated[str, Path(max_length=32)], services: ServicesDep, principal: PrincipalDep
) -> ReclaimOut | None:
    """The workload's pending idle reclaim (null when none): what the console's banner shows."""
    return await services.reclaim.pending(principal, workload_id)


@router.post("/workloads/{workload_id}/keep", response_model=ReclaimOut)
async def keep_running(
    workload_id: Annotated[str, Path(max_length=32)], services: ServicesDep, principal: PrincipalDep
) -> ReclaimOut:
    """Postpone the workload's idle reclaim (up to its policy's hard cap)."""
    return await services.reclaim.keep(principal, workload_id)
