"""Alerts in the database, on SQLite, PostgreSQL and MariaDB: one open alert per rule and key even when
raised concurrently, one delivery per subscribed channel, a resolve message queued behind its fired
message, and the delivery worker's backoff recorded attempt by attempt."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from astrago.auth.principal import Principal
from astrago.config import Settings
from astrago.monitor.alerts.channels import Message, Senders, SendFailed
from astrago.monitor.alerts.delivery import DeliveryWorker
from astrago.monitor.alerts.rules import AlertState, ChannelKind, DeliveryStatus
from astrago.monitor.alerts.schemas import ChannelCreate, SubscriptionCreate
from astrago.monitor.alerts.service import AlertService, now_utc
from astrago.services.context import ServiceContext
from astrago.store.repositories.alerts import AlertRepository

ADMIN = Principal(user_id="admin", username="admin", is_admin=True)


@pytest.fixture
def ctx(sessions: async_sessionmaker[AsyncSession], tmp_path: Path) -> ServiceContext:
    settings = Settings(data_dir=tmp_path, alert_retry_base_s=60, alert_delivery_attempts=2)
    return ServiceContext(sessions=sessions, settings=settings)


class FlakySenders(Senders):
    """Records what it would send; fails the first `failures` attempts."""

    def __init__(self, settings: Settings, failures: int) -> None:
        super().__init__(settings)
        self.failures = failures
        self.sent: list[tuple[str, str, str]] = []

    async def send(self, kind: ChannelKind, target: str, secret: str | None, message: Message) -> None:
        if self.failures:
            self.failures -= 1
            raise SendFailed("HTTP 503: try later")
        self.sent.append((target, message.event.value, message.alert.key))


async def _channels(alerts: AlertService) -> None:
    for name in ("a", "b"):
        await alerts.add_channel(
            ADMIN, ChannelCreate(name=name, kind=ChannelKind.WEBHOOK, target=f"http://127.0.0.1:9/{name}")
        )
        await alerts.subscribe(ADMIN, SubscriptionCreate(channel=name, all=True))
    # a second subscription of the same channel still means one delivery per alert
    await alerts.subscribe(ADMIN, SubscriptionCreate(channel="a", all=True))


async def test_one_open_alert_per_rule_and_key_even_when_raised_at_once(ctx: ServiceContext) -> None:
    alerts = AlertService(ctx)
    await _channels(alerts)
    raised = await asyncio.gather(
        *(
            alerts.raise_alert("node-lost", "node-1", "critical", "node-1 is gone", node="node-1")
            for _ in range(5)
        )
    )
    assert sum(raised) == 1
    assert not await alerts.raise_alert("node-lost", "node-1", "critical", "still gone")
    page = await alerts.alerts(ADMIN, None, 10, None)
    assert [(a.rule, a.key, a.state) for a in page.items] == [("node-lost", "node-1", AlertState.FIRING)]
    assert page.open_count == 1
    deliveries = await alerts.deliveries(ADMIN, None, None, None, 10)
    assert sorted(d.channel for d in deliveries) == ["a", "b"]

    assert await alerts.resolve_alert("node-lost", "node-1")
    assert not await alerts.resolve_alert("node-lost", "node-1")
    # the next occurrence is a new alert
    assert await alerts.raise_alert("node-lost", "node-1", "critical", "gone again")
    page = await alerts.alerts(ADMIN, None, 10, None)
    assert [a.state for a in page.items] == [AlertState.FIRING, AlertState.RESOLVED]


async def test_deliveries_retry_with_backoff_and_resolved_waits_for_fired(ctx: ServiceContext) -> None:
    alerts = AlertService(ctx)
    await _channels(alerts)
    senders = FlakySenders(ctx.settings, failures=2)
    worker = DeliveryWorker(ctx, alerts, senders)
    await alerts.raise_alert("quota-high", "ml", "warning", "ml uses 95 %")
    await alerts.resolve_alert("quota-high", "ml")

    assert await worker.deliver_due() == 2  # the two fired messages; both fail; resolved ones wait
    assert senders.sent == []
    async with ctx.read() as session:
        due = await AlertRepository(session).due_deliveries(now_utc() + timedelta(seconds=59), 10)
        assert due == []  # retried after 60 s (the base), not before
    failed = await alerts.deliveries(ADMIN, None, None, DeliveryStatus.PENDING, 10)
    assert {(d.event.value, d.attempts, d.last_error) for d in failed} == {
        ("fired", 1, "HTTP 503: try later"),
        ("resolved", 0, None),
    }

    later = now_utc() + timedelta(seconds=61)
    async with ctx.write() as session:
        for delivery in await AlertRepository(session).due_deliveries(later, 10):
            delivery.next_attempt_at = now_utc()
    assert await worker.deliver_due() == 2  # the fired messages, now delivered
    assert await worker.deliver_due() == 2  # then the resolved ones
    assert sorted(senders.sent) == [
        ("http://127.0.0.1:9/a", "fired", "ml"),
        ("http://127.0.0.1:9/a", "resolved", "ml"),
        ("http://127.0.0.1:9/b", "fired", "ml"),
        ("http://127.0.0.1:9/b", "resolved", "ml"),
    ]
    log = await alerts.deliveries(ADMIN, None, None, None, 10)
    assert {(d.event.value, d.status, d.attempts) for d in log} == {
        ("fired", DeliveryStatus.DELIVERED, 2),
        ("resolved", DeliveryStatus.DELIVERED, 1),
    }
    await senders.aclose()


async def test_a_delivery_fails_for_good_after_its_attempts(ctx: ServiceContext) -> None:
    alerts = AlertService(ctx)
    await _channels(alerts)
    senders = FlakySenders(ctx.settings, failures=100)
    worker = DeliveryWorker(ctx, alerts, senders)
    await alerts.raise_alert("job-failed", "wl-1", "warning", "wl-1 failed")
    for _ in range(2):  # alert_delivery_attempts
        async with ctx.write() as session:
            for delivery in await AlertRepository(session).due_deliveries(now_utc() + timedelta(days=1), 10):
                delivery.next_attempt_at = now_utc()
        await worker.deliver_due()
    log = await alerts.deliveries(ADMIN, None, None, None, 10)
    assert {(d.status, d.attempts, d.next_attempt_at) for d in log} == {(DeliveryStatus.FAILED, 2, None)}
    await senders.aclose()
