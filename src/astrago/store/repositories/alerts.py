"""Queries of alerts, channels, subscriptions, deliveries, rule settings, idle policies, reclaim notices
and endpoint activity."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from astrago.store.models import (
    Alert,
    AlertChannel,
    AlertDelivery,
    AlertRuleSetting,
    AlertSubscription,
    IdlePolicy,
    Node,
    QuotaEntry,
    ReclaimNotice,
    Workload,
    WorkloadActivity,
)


def alert_scope(workspace_ids: Collection[str] | None, user_id: str | None) -> ColumnElement[bool] | None:
    """Alerts of these workspaces or about this user's workloads; None (no filter) for admins."""
    if workspace_ids is None:
        return None
    conditions: list[ColumnElement[bool]] = [Alert.workspace_id.in_(list(workspace_ids))]
    if user_id is not None:
        conditions.append(Alert.user_id == user_id)
    return or_(*conditions)


class AlertRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # -- alerts ------------------------------------------------------------------------------------------

    async def open_alert(self, open_key: str) -> Alert | None:
        return await self.session.scalar(select(Alert).where(Alert.open_key == open_key))

    async def raised_keys(self, rule: str, keys: Collection[str]) -> set[str]:
        """Which of these keys ever had an alert of this rule (open or resolved)."""
        if not keys:
            return set()
        query = select(Alert.key).where(Alert.rule == rule, Alert.key.in_(list(keys))).distinct()
        return set((await self.session.scalars(query)).all())

    async def open_of_rule(self, rule: str) -> Sequence[Alert]:
        query = select(Alert).where(Alert.rule == rule, Alert.open_key.is_not(None))
        return (await self.session.scalars(query)).all()

    async def get(self, alert_id: int) -> Alert | None:
        return await self.session.get(Alert, alert_id)

    def add(self, alert: Alert) -> None:
        self.session.add(alert)

    async def page(
        self, scope: ColumnElement[bool] | None, firing: bool | None, limit: int, before_id: int | None
    ) -> Sequence[Alert]:
        query = select(Alert)
        if scope is not None:
            query = query.where(scope)
        if firing is not None:
            query = query.where(Alert.open_key.is_not(None) if firing else Alert.open_key.is_(None))
        if before_id is not None:
            query = query.where(Alert.id < before_id)
        return (await self.session.scalars(query.order_by(Alert.id.desc()).limit(limit))).all()

    async def count_open(self, scope: ColumnElement[bool] | None) -> int:
        query = select(func.count()).select_from(Alert).where(Alert.open_key.is_not(None))
        if scope is not None:
            query = query.where(scope)
        return int(await self.session.scalar(query) or 0)

    # -- channels and subscriptions -----------------------------------------------------------------------

    async def channel_by_name(self, name: str) -> AlertChannel | None:
        return await self.session.scalar(select(AlertChannel).where(AlertChannel.name == name))

    async def channels(self) -> Sequence[AlertChannel]:
        return (await self.session.scalars(select(AlertChannel).order_by(AlertChannel.name))).all()

    def add_channel(self, channel: AlertChannel) -> None:
        self.session.add(channel)

    async def delete_channel(self, channel: AlertChannel) -> None:
        await self.session.delete(channel)

    async def subscriptions(self) -> Sequence[AlertSubscription]:
        query = select(AlertSubscription).order_by(AlertSubscription.created_at, AlertSubscription.id)
        return (await self.session.scalars(query)).all()

    async def subscription(self, subscription_id: str) -> AlertSubscription | None:
        return await self.session.get(AlertSubscription, subscription_id)

    def add_subscription(self, subscription: AlertSubscription) -> None:
        self.session.add(subscription)

    async def delete_subscription(self, subscription: AlertSubscription) -> None:
        await self.session.delete(subscription)

    async def subscriptions_for(
        self, workspace_id: str | None, user_id: str | None
    ) -> Sequence[AlertSubscription]:
        """Subscriptions that may want an alert of this workspace or user (rules and severity are checked
        by the caller): those to everything, to the workspace and to the user."""
        conditions: list[ColumnElement[bool]] = [
            (AlertSubscription.workspace_id.is_(None)) & (AlertSubscription.user_id.is_(None))
        ]
        if workspace_id is not None:
            conditions.append(AlertSubscription.workspace_id == workspace_id)
        if user_id is not None:
            conditions.append(AlertSubscription.user_id == user_id)
        query = select(AlertSubscription).where(or_(*conditions))
        return (await self.session.scalars(query)).all()

    # -- deliveries ----------------------------------------------------------------------------------------

    def add_delivery(self, delivery: AlertDelivery) -> None:
        self.session.add(delivery)

    async def due_deliveries(self, now: datetime, limit: int) -> Sequence[AlertDelivery]:
        # a notification waits while an older one of the same alert to the same channel is still pending,
        # so that a receiver never hears "resolved" before "fired"
        older = aliased(AlertDelivery)
        earlier_pending = (
            select(older.id)
            .where(
                older.alert_id == AlertDelivery.alert_id,
                older.channel_id == AlertDelivery.channel_id,
                older.status == "pending",
                older.id < AlertDelivery.id,
            )
            .exists()
        )
        query = (
            select(AlertDelivery)
            .where(AlertDelivery.status == "pending", AlertDelivery.next_attempt_at <= now, ~earlier_pending)
            .order_by(AlertDelivery.next_attempt_at, AlertDelivery.id)
            .limit(limit)
        )
        return (await self.session.scalars(query)).all()

    async def next_due(self) -> datetime | None:
        query = select(func.min(AlertDelivery.next_attempt_at)).where(AlertDelivery.status == "pending")
        return await self.session.scalar(query)

    async def delivery(self, delivery_id: int) -> AlertDelivery | None:
        return await self.session.get(AlertDelivery, delivery_id)

    async def deliveries(
        self, alert_id: int | None, channel_id: str | None, status: str | None, limit: int
    ) -> Sequence[tuple[AlertDelivery, str]]:
        """Newest first, each with its alert's rule."""
        query = select(AlertDelivery, Alert.rule).join(Alert, Alert.id == AlertDelivery.alert_id)
        if alert_id is not None:
            query = query.where(AlertDelivery.alert_id == alert_id)
        if channel_id is not None:
            query = query.where(AlertDelivery.channel_id == channel_id)
        if status is not None:
            query = query.where(AlertDelivery.status == status)
        rows = (await self.session.execute(query.order_by(AlertDelivery.id.desc()).limit(limit))).all()
        return [(delivery, rule) for delivery, rule in rows]

    # -- rule settings --------------------------------------------------------------------------------------

    async def rule_settings(self) -> dict[str, AlertRuleSetting]:
        return {s.rule: s for s in (await self.session.scalars(select(AlertRuleSetting))).all()}

    async def rule_setting(self, rule: str) -> AlertRuleSetting | None:
        return await self.session.get(AlertRuleSetting, rule)

    def add_rule_setting(self, setting: AlertRuleSetting) -> None:
        self.session.add(setting)


class ReclaimRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def policies(self) -> Sequence[IdlePolicy]:
        return (await self.session.scalars(select(IdlePolicy))).all()

    async def policy(self, workspace_id: str | None, kind: str) -> IdlePolicy | None:
        scope = (
            IdlePolicy.workspace_id.is_(None)
            if workspace_id is None
            else IdlePolicy.workspace_id == workspace_id
        )
        return await self.session.scalar(select(IdlePolicy).where(scope, IdlePolicy.kind == kind))

    def add_policy(self, policy: IdlePolicy) -> None:
        self.session.add(policy)

    async def delete_policy(self, policy: IdlePolicy) -> None:
        await self.session.delete(policy)

    async def notices(self) -> dict[str, ReclaimNotice]:
        return {n.workload_id: n for n in (await self.session.scalars(select(ReclaimNotice))).all()}

    async def notice(self, workload_id: str, for_update: bool = False) -> ReclaimNotice | None:
        query = select(ReclaimNotice).where(ReclaimNotice.workload_id == workload_id)
        if for_update:
            query = query.with_for_update()
        return await self.session.scalar(query)

    def add_notice(self, notice: ReclaimNotice) -> None:
        self.session.add(notice)

    async def delete_notice(self, workload_id: str) -> None:
        await self.session.execute(delete(ReclaimNotice).where(ReclaimNotice.workload_id == workload_id))

    async def last_requests(self, workload_ids: Collection[str]) -> dict[str, datetime]:
        if not workload_ids:
            return {}
        query = select(WorkloadActivity).where(WorkloadActivity.workload_id.in_(list(workload_ids)))
        return {a.workload_id: a.last_request_at for a in (await self.session.scalars(query)).all()}

    async def record_requests(self, seen: dict[str, datetime], known: Collection[str]) -> None:
        """Move each workload's last request time forward (never back); ids not in `known` are skipped."""
        existing = await self.last_requests([w for w in seen if w in known])
        for workload_id, at in seen.items():
            if workload_id not in known:
                continue
            if workload_id not in existing:
                self.session.add(WorkloadActivity(workload_id=workload_id, last_request_at=at))
            elif existing[workload_id] < at:
                await self.session.execute(
                    update(WorkloadActivity)
                    .where(WorkloadActivity.workload_id == workload_id, WorkloadActivity.last_request_at < at)
                    .values(last_request_at=at)
                )


class AlertSubjectRepository:
    """The platform state the built-in rules look at."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def workloads(self, statuses: Collection[str]) -> Sequence[Workload]:
        query = select(Workload).where(Workload.status.in_(list(statuses))).order_by(Workload.seq)
        return (await self.session.scalars(query)).all()

    async def failed_since(self, since: datetime) -> Sequence[Workload]:
        query = select(Workload).where(Workload.status == "FAILED", Workload.finished_at >= since)
        return (await self.session.scalars(query)).all()

    async def nodes(self) -> Sequence[Node]:
        return (await self.session.scalars(select(Node))).all()

    async def gpu_limits(self) -> dict[str, int]:
        """Workspace id → GPU limit (milli-GPU), for workspaces that have one."""
        query = select(QuotaEntry).where(QuotaEntry.resource == "gpu", QuotaEntry.limit.is_not(None))
        return {q.workspace_id: int(q.limit) for q in (await self.session.scalars(query)).all() if q.limit}
