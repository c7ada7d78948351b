"""Alerts: raising and resolving them (one open per rule and key), who sees them, channels and
subscriptions (admins), the delivery log, and the thresholds of the built-in rules.

`raise_alert` and `resolve_alert` are the calls other parts of the platform use (GPU health raises
"gpu-unhealthy"); each returns whether it changed anything, so a caller that repeats itself every cycle
sends one notification per occurrence, not one per cycle."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from astrago.auth.principal import Principal
from astrago.config import Settings
from astrago.domain.changes import ChangeKind
from astrago.domain.enums import WorkspaceRole
from astrago.monitor.alerts.channels import check_target, shown_target
from astrago.monitor.alerts.rules import (
    AlertRule,
    AlertState,
    ChannelKind,
    DeliveryEvent,
    DeliveryStatus,
    RuleThreshold,
    Severity,
    open_key,
)
from astrago.monitor.alerts.schemas import (
    AlertOut,
    AlertPageOut,
    ChannelCreate,
    ChannelCreated,
    ChannelOut,
    DeliveryOut,
    RuleOut,
    RuleSet,
    SubscriptionCreate,
    SubscriptionOut,
)
from astrago.monitor.alerts.signing import new_secret
from astrago.services.context import ServiceContext
from astrago.services.errors import Conflict, Forbidden, InvalidInput, NotFound
from astrago.services.users import require_admin
from astrago.services.workspaces import resolve_workspace
from astrago.store.ids import new_id
from astrago.store.models import Alert, AlertChannel, AlertDelivery, AlertRuleSetting, AlertSubscription
from astrago.store.repositories import (
    ChangeRepository,
    UserRepository,
    WorkloadRepository,
    WorkspaceRepository,
)
from astrago.store.repositories.alerts import AlertRepository, alert_scope

log = logging.getLogger(__name__)
MAX_PAGE = 500
MAX_SUMMARY = 2000

RULE_DESCRIPTIONS = {
    AlertRule.GPU_IDLE: "a running workload's GPUs stay under `threshold` % for `for_s` seconds",
    AlertRule.WORKLOAD_PENDING: "a workload waits in the queue longer than `for_s` seconds",
    AlertRule.QUOTA_HIGH: "a workspace uses at least `threshold` % of its GPU limit",
    AlertRule.NODE_LOST: "a node has not reported for `for_s` seconds",
    AlertRule.JOB_FAILED: "a workload ended FAILED",
    AlertRule.GPU_UNHEALTHY: "a GPU was found unhealthy (raised by GPU health fencing)",
    AlertRule.IDLE_RECLAIM: "an idle workload will be stopped (raised by idle reclaim)",
}


def now_utc() -> datetime:
    return datetime.now(UTC)


def default_thresholds(settings: Settings) -> dict[AlertRule, RuleThreshold]:
    return {
        AlertRule.GPU_IDLE: RuleThreshold(
            True, settings.alert_gpu_idle_percent, settings.alert_gpu_idle_for_s
        ),
        AlertRule.WORKLOAD_PENDING: RuleThreshold(True, None, settings.alert_pending_for_s),
        AlertRule.QUOTA_HIGH: RuleThreshold(True, settings.alert_quota_percent, None),
        AlertRule.NODE_LOST: RuleThreshold(True, None, settings.alert_node_lost_after_s),
        AlertRule.JOB_FAILED: RuleThreshold(True, None, None),
        AlertRule.GPU_UNHEALTHY: RuleThreshold(True, None, None),
        AlertRule.IDLE_RECLAIM: RuleThreshold(True, None, None),
    }


@dataclass(frozen=True)
class AlertSubject:
    """What an alert is about, resolved to ids."""

    workspace_id: str | None
    workspace_name: str | None
    workload_id: str | None
    user_id: str | None
    node: str | None


def alert_out(alert: Alert, workspace_name: str | None) -> AlertOut:
    return AlertOut(
        id=alert.id,
        rule=alert.rule,
        key=alert.key,
        state=AlertState.FIRING if alert.open_key is not None else AlertState.RESOLVED,
        severity=Severity(alert.severity),
        summary=alert.summary,
        resolution=alert.resolution,
        workspace=workspace_name,
        workload_id=alert.workload_id,
        node=alert.node,
        opened_at=alert.opened_at,
        resolved_at=alert.resolved_at,
    )


def channel_out(channel: AlertChannel) -> ChannelOut:
    kind = ChannelKind(channel.kind)
    return ChannelOut(
        id=channel.id,
        name=channel.name,
        kind=kind,
        target=shown_target(kind, channel.target),
        signed=bool(channel.secret),
        created_by=channel.created_by,
        created_at=channel.created_at,
    )


class AlertService:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self.deliveries_waiting = asyncio.Event()  # set when a delivery is queued: the worker wakes

    # -- the calls other parts of the platform make

    async def raise_alert(
        self,
        rule: AlertRule | str,
        key: str,
        severity: Severity | str,
        summary: str,
        workspace: str | None = None,
        workload_id: str | None = None,
        node: str | None = None,
    ) -> bool:
        """Open an alert unless one is already open for this rule and key; True when one was opened (its
        notifications are queued in the same transaction)."""
        try:
            async with self.ctx.write() as session:
                opened = await self.raise_in(
                    session, str(rule), key, Severity(severity), summary, workspace, workload_id, node
                )
        except IntegrityError:  # another process opened the same alert at the same moment
            return False
        if opened:
            self.deliveries_waiting.set()
        return opened

    async def resolve_alert(self, rule: AlertRule | str, key: str, resolution: str | None = None) -> bool:
        """Resolve the open alert of this rule and key, if any; True when one was resolved."""
        async with self.ctx.write() as session:
            resolved = await self.resolve_in(session, str(rule), key, resolution)
        if resolved:
            self.deliveries_waiting.set()
        return resolved

    async def raise_in(
        self,
        session: AsyncSession,
        rule: str,
        key: str,
        severity: Severity,
        summary: str,
        workspace: str | None = None,
        workload_id: str | None = None,
        node: str | None = None,
    ) -> bool:
        """raise_alert inside the caller's transaction (call `deliveries_waiting.set()` after commit)."""
        repo = AlertRepository(session)
        unique = open_key(rule, key)
        if await repo.open_alert(unique) is not None:
            return False
        subject = await self._subject(session, workspace, workload_id, node)
        alert = Alert(
            rule=rule,
            key=key,
            open_key=unique,
            severity=severity.value,
            summary=summary[:MAX_SUMMARY],
            workspace_id=subject.workspace_id,
            workload_id=subject.workload_id,
            user_id=subject.user_id,
            node=subject.node,
            opened_at=now_utc(),
        )
        repo.add(alert)
        await session.flush()
        await self._queue(session, alert, DeliveryEvent.FIRED)
        if alert.workload_id:
            ChangeRepository(session).record(ChangeKind.WORKLOAD, alert.workload_id)  # the console refreshes
        log.info("alert %s %s opened: %s", rule, key, summary)
        return True

    async def resolve_in(self, session: AsyncSession, rule: str, key: str, resolution: str | None) -> bool:
        alert = await AlertRepository(session).open_alert(open_key(rule, key))
        if alert is None:
            return False
        await self._close(session, alert, resolution)
        return True

    async def _close(self, session: AsyncSession, alert: Alert, resolution: str | None) -> None:
        alert.open_key = None
        alert.resolved_at = now_utc()
        alert.resolution = (resolution or "the condition no longer holds")[:MAX_SUMMARY]
        await session.flush()
        await self._queue(session, alert, DeliveryEvent.RESOLVED)
        if alert.workload_id:
            ChangeRepository(session).record(ChangeKind.WORKLOAD, alert.workload_id)
        log.info("alert %s %s resolved: %s", alert.rule, alert.key, alert.resolution)

    async def _subject(
        self, session: AsyncSession, workspace: str | None, workload_id: str | None, node: str | None
    ) -> AlertSubject:
        workspace_id = user_id = None
        workspaces = WorkspaceRepository(session)
        if workload_id is not None:
            workload = await WorkloadRepository(session).get(workload_id)
            if workload is not None:
                workspace_id, user_id = workload.workspace_id, workload.created_by
        if workspace is not None and workspace_id is None:
            found = await workspaces.get(workspace) or await workspaces.by_name(workspace)
            workspace_id = found.id if found else None
        name = None
        if workspace_id is not None:
            found = await workspaces.get(workspace_id)
            name = found.name if found else None
        return AlertSubject(workspace_id, name, workload_id, user_id, node)

    async def _queue(self, session: AsyncSession, alert: Alert, event: DeliveryEvent) -> None:
        """One delivery per channel whose subscriptions want this alert."""
        repo = AlertRepository(session)
        severity = Severity(alert.severity)
        channels: set[str] = set()
        for sub in await repo.subscriptions_for(alert.workspace_id, alert.user_id):
            if sub.rules is not None and alert.rule not in sub.rules:
                continue
            if severity.rank < Severity(sub.min_severity).rank:
                continue
            channels.add(sub.channel_id)
        now = now_utc()
        for channel_id in sorted(channels):
            repo.add_delivery(
                AlertDelivery(
                    alert_id=alert.id,
                    channel_id=channel_id,
                    event=event.value,
                    status=DeliveryStatus.PENDING.value,
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                )
            )

    # -- reading and closing alerts

    async def alerts(
        self, principal: Principal, state: AlertState | None, limit: int, before_id: int | None
    ) -> AlertPageOut:
        """Alerts the caller may see: admins every alert; others those of their workspaces and workloads."""
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}")
        scope = alert_scope(None if principal.is_admin else list(principal.roles), principal.user_id)
        firing = None if state is None else state is AlertState.FIRING
        async with self.ctx.read() as session:
            repo = AlertRepository(session)
            alerts = await repo.page(scope, firing, limit, before_id)
            count = await repo.count_open(scope)
            names = {w.id: w.name for w in await WorkspaceRepository(session).list()}
        return AlertPageOut(
            items=[alert_out(a, names.get(a.workspace_id or "")) for a in alerts], open_count=count
        )

    async def close(self, principal: Principal, alert_id: int) -> AlertOut:
        """Resolve an alert by hand (e.g. a failed job that was looked at): admins, or a workspace member."""
        async with self.ctx.mutation(principal, "alert.resolve", str(alert_id)) as mutation:
            session = mutation.session
            alert = await AlertRepository(session).get(alert_id)
            visible = alert is not None and (
                principal.is_admin
                or (alert.workspace_id is not None and alert.workspace_id in principal.roles)
                or alert.user_id == principal.user_id
            )
            if alert is None or not visible:
                raise NotFound(f"alert {alert_id} does not exist or is not yours to see")
            member = (
                principal.is_admin
                or alert.user_id == principal.user_id
                or (
                    alert.workspace_id is not None and principal.can(alert.workspace_id, WorkspaceRole.MEMBER)
                )
            )
            if not member:
                raise Forbidden("only a member of the alert's workspace or an admin can resolve it")
            if alert.open_key is None:
                raise Conflict(f"alert {alert_id} is already resolved")
            await self._close(session, alert, f"resolved by {principal.username}")
            workspace = (
                await WorkspaceRepository(session).get(alert.workspace_id) if alert.workspace_id else None
            )
            out = alert_out(alert, workspace.name if workspace else None)
        self.deliveries_waiting.set()
        return out

    # -- channels --------------------------------------------------------------------------------------------

    async def channels(self, principal: Principal) -> list[ChannelOut]:
        require_admin(principal, "list notification channels")
        async with self.ctx.read() as session:
            return [channel_out(c) for c in await AlertRepository(session).channels()]

    async def add_channel(self, principal: Principal, request: ChannelCreate) -> ChannelCreated:
        target = request.target.strip()
        problem = check_target(request.kind, target)
        if problem is None and request.kind is ChannelKind.EMAIL and not self.ctx.settings.smtp_host:
            problem = "this server has no SMTP server to send email through: its administrator sets smtp_host"
        if problem is None and request.secret is not None and request.kind is not ChannelKind.WEBHOOK:
            problem = "only webhook channels are signed: give --secret with --webhook only"
        if problem is not None:
            error = InvalidInput(problem)
            await self.ctx.record_refusal(principal, "alert.channel.add", request.name, error)
            raise error
        generated = request.kind is ChannelKind.WEBHOOK and request.secret is None
        secret = new_secret() if generated else request.secret
        async with self.ctx.mutation(principal, "alert.channel.add", request.name) as mutation:
            require_admin(principal, "add notification channels")
            repo = AlertRepository(mutation.session)
            if await repo.channel_by_name(request.name) is not None:
                raise Conflict(f"a channel named {request.name!r} exists already")
            channel = AlertChannel(
                id=new_id(),
                name=request.name,
                kind=request.kind.value,
                target=target,
                secret=secret,
                created_by=principal.username,
                created_at=now_utc(),
            )
            repo.add_channel(channel)
            mutation.detail = f"{request.kind.value} {shown_target(request.kind, target)}"
            out = channel_out(channel)
        # the secret is shown once, and only when the server made it (the admin knows their own)
        return ChannelCreated(**out.model_dump(), secret=secret if generated else None)

    async def remove_channel(self, principal: Principal, name: str) -> None:
        async with self.ctx.mutation(principal, "alert.channel.remove", name) as mutation:
            require_admin(principal, "remove notification channels")
            repo = AlertRepository(mutation.session)
            channel = await repo.channel_by_name(name)
            if channel is None:
                raise NotFound(f"no notification channel is named {name!r}")
            await repo.delete_channel(channel)

    # -- subscriptions

    async def subscriptions(self, principal: Principal) -> list[SubscriptionOut]:
        require_admin(principal, "list alert subscriptions")
        async with self.ctx.read() as session:
            subs = await AlertRepository(session).subscriptions()
            return [await self._subscription_out(session, s) for s in subs]

    async def subscribe(self, principal: Principal, request: SubscriptionCreate) -> SubscriptionOut:
        scopes = [request.workspace is not None, request.user is not None, request.all]
        if sum(scopes) != 1:
            error = InvalidInput("say whose alerts the channel receives: a workspace, a user, or all")
            await self.ctx.record_refusal(principal, "alert.subscribe", request.channel, error)
            raise error
        async with self.ctx.mutation(principal, "alert.subscribe", request.channel) as mutation:
            require_admin(principal, "subscribe channels to alerts")
            session = mutation.session
            repo = AlertRepository(session)
            channel = await repo.channel_by_name(request.channel)
            if channel is None:
                raise NotFound(f"no notification channel is named {request.channel!r}")
            workspace_id = user_id = None
            if request.workspace is not None:
                workspace_id = (
                    await resolve_workspace(session, principal, request.workspace, WorkspaceRole.VIEWER)
                ).id
            if request.user is not None:
                user = await UserRepository(session).by_username(request.user)
                if user is None:
                    raise NotFound(f"no user is named {request.user!r}")
                user_id = user.id
            subscription = AlertSubscription(
                id=new_id(),
                channel_id=channel.id,
                workspace_id=workspace_id,
                user_id=user_id,
                rules=[r.value for r in request.rules] if request.rules else None,
                min_severity=request.min_severity.value,
                created_at=now_utc(),
            )
            repo.add_subscription(subscription)
            await session.flush()
            out = await self._subscription_out(session, subscription)
            mutation.target = subscription.id
            mutation.detail = (
                f"{channel.name} ← {(out.workspace and 'workspace ' + out.workspace) or ''}"
                f"{(out.user and 'user ' + out.user) or ''}{'' if out.workspace or out.user else 'all'}"
                f" rules={','.join(out.rules) if out.rules else 'all'} min_severity={out.min_severity.value}"
            )
            return out

    async def unsubscribe(self, principal: Principal, subscription_id: str) -> None:
        async with self.ctx.mutation(principal, "alert.unsubscribe", subscription_id) as mutation:
            require_admin(principal, "remove alert subscriptions")
            repo = AlertRepository(mutation.session)
            subscription = await repo.subscription(subscription_id)
            if subscription is None:
                raise NotFound(f"no subscription has the id {subscription_id!r}")
            await repo.delete_subscription(subscription)

    async def _subscription_out(self, session: AsyncSession, sub: AlertSubscription) -> SubscriptionOut:
        workspace = await WorkspaceRepository(session).get(sub.workspace_id) if sub.workspace_id else None
        user = await UserRepository(session).get(sub.user_id) if sub.user_id else None
        return SubscriptionOut(
            id=sub.id,
            channel=sub.channel.name,
            workspace=workspace.name if workspace else None,
            user=user.username if user else None,
            rules=[AlertRule(r) for r in sub.rules if r in AlertRule._value2member_map_]
            if sub.rules
            else None,
            min_severity=Severity(sub.min_severity),
            created_at=sub.created_at,
        )

    # -- the delivery log

    async def deliveries(
        self,
        principal: Principal,
        alert_id: int | None,
        channel: str | None,
        status: DeliveryStatus | None,
        limit: int,
    ) -> list[DeliveryOut]:
        require_admin(principal, "read the delivery log")
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}")
        async with self.ctx.read() as session:
            repo = AlertRepository(session)
            channel_id = None
            if channel is not None:
                found = await repo.channel_by_name(channel)
                if found is None:
                    raise NotFound(f"no notification channel is named {channel!r}")
                channel_id = found.id
            rows = await repo.deliveries(alert_id, channel_id, status.value if status else None, limit)
            return [delivery_out(d, rule) for d, rule in rows]

    # -- thresholds of the built-in rules

    async def thresholds(self) -> dict[AlertRule, RuleThreshold]:
        defaults = default_thresholds(self.ctx.settings)
        async with self.ctx.read() as session:
            stored = await AlertRepository(session).rule_settings()
        return {rule: _merged(defaults[rule], stored.get(rule.value)) for rule in AlertRule}

    async def rules(self, principal: Principal) -> list[RuleOut]:
        require_admin(principal, "read the alert rules")
        return [_rule_out(rule, t) for rule, t in (await self.thresholds()).items()]

    async def set_rule(self, principal: Principal, rule: AlertRule, request: RuleSet) -> RuleOut:
        async with self.ctx.mutation(principal, "alert.rule.set", rule.value) as mutation:
            require_admin(principal, "change alert rules")
            repo = AlertRepository(mutation.session)
            setting = await repo.rule_setting(rule.value)
            if setting is None:
                setting = AlertRuleSetting(rule=rule.value, enabled=True, updated_at=now_utc())
                repo.add_rule_setting(setting)
            changed = request.model_dump(exclude_unset=True)
            if not changed:
                raise InvalidInput("nothing to change: give enabled, threshold or for_s")
            for name, value in changed.items():
                setattr(
                    setting,
                    name,
                    float(value) if isinstance(value, int | float) and name != "enabled" else value,
                )
            setting.updated_at = now_utc()
            mutation.detail = ", ".join(f"{k}={v}" for k, v in changed.items())
            merged = _merged(default_thresholds(self.ctx.settings)[rule], setting)
        return _rule_out(rule, merged)


def _merged(default: RuleThreshold, stored: AlertRuleSetting | None) -> RuleThreshold:
    if stored is None:
        return default
    return RuleThreshold(
        enabled=stored.enabled,
        threshold=stored.threshold if stored.threshold is not None else default.threshold,
        for_s=stored.for_s if stored.for_s is not None else default.for_s,
    )


def _rule_out(rule: AlertRule, threshold: RuleThreshold) -> RuleOut:
    return RuleOut(
        rule=rule,
        enabled=threshold.enabled,
        threshold=threshold.threshold,
        for_s=threshold.for_s,
        description=RULE_DESCRIPTIONS[rule],
    )


def delivery_out(delivery: AlertDelivery, rule: str) -> DeliveryOut:
    status = DeliveryStatus(delivery.status)
    return DeliveryOut(
        id=delivery.id,
        alert_id=delivery.alert_id,
        rule=rule,
        channel=delivery.channel.name,
        event=DeliveryEvent(delivery.event),
        status=status,
        attempts=delivery.attempts,
        next_attempt_at=delivery.next_attempt_at if status is DeliveryStatus.PENDING else None,
        last_error=delivery.last_error,
        created_at=delivery.created_at,
        delivered_at=delivery.delivered_at,
    )
