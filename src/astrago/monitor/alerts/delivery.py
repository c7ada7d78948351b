"""The delivery worker: sends due notifications, records each attempt, retries with exponential backoff.

Delivery is at least once: a server that dies between sending and recording sends again after restart.
Each notification carries its delivery id (the webhook's `X-AstraGo-Delivery` header, the email's
`X-AstraGo-Alert`), so a receiver can drop a repeat."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import timedelta

from astrago.monitor.alerts.channels import Message, Senders, SendFailed
from astrago.monitor.alerts.rules import ChannelKind, DeliveryEvent, DeliveryStatus, retry_delay_s
from astrago.monitor.alerts.service import AlertService, alert_out, now_utc
from astrago.services.context import ServiceContext
from astrago.store.repositories import WorkspaceRepository
from astrago.store.repositories.alerts import AlertRepository

log = logging.getLogger(__name__)
BATCH = 100
CONCURRENT_SENDS = 8


@dataclass(frozen=True)
class _Attempt:
    delivery_id: int
    kind: ChannelKind
    target: str
    secret: str | None
    message: Message


class DeliveryWorker:
    def __init__(self, ctx: ServiceContext, alerts: AlertService, senders: Senders) -> None:
        self.ctx = ctx
        self.alerts = alerts
        self.senders = senders

    async def run(self) -> None:
        interval = self.ctx.settings.alert_delivery_interval_s
        while True:
            self.alerts.deliveries_waiting.clear()
            try:
                while await self.deliver_due() == BATCH:
                    pass
            except Exception:
                log.exception("could not deliver alert notifications; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.alerts.deliveries_waiting.wait(), interval)

    async def deliver_due(self) -> int:
        """One pass over the deliveries due now; the number attempted."""
        attempts = await self._due()
        if not attempts:
            return 0
        limit = asyncio.Semaphore(CONCURRENT_SENDS)

        async def attempt(item: _Attempt) -> tuple[int, str | None]:
            async with limit:
                try:
                    await self.senders.send(item.kind, item.target, item.secret, item.message)
                except SendFailed as exc:
                    return item.delivery_id, str(exc) or "failed"
                except Exception as exc:  # a sender's bug must not stop the other deliveries
                    log.exception("alert delivery %s failed unexpectedly", item.delivery_id)
                    return item.delivery_id, f"{type(exc).__name__}: {exc}"
                return item.delivery_id, None

        results = await asyncio.gather(*(attempt(item) for item in attempts))
        await self._record(results)
        return len(attempts)

    async def _due(self) -> list[_Attempt]:
        async with self.ctx.read() as session:
            repo = AlertRepository(session)
            due = await repo.due_deliveries(now_utc(), BATCH)
            names = {w.id: w.name for w in await WorkspaceRepository(session).list()} if due else {}
            attempts = []
            for delivery in due:
                alert = await repo.get(delivery.alert_id)
                if alert is None:
                    continue
                message = Message(
                    DeliveryEvent(delivery.event),
                    delivery.id,
                    alert_out(alert, names.get(alert.workspace_id or "")),
                )
                channel = delivery.channel
                attempts.append(
                    _Attempt(delivery.id, ChannelKind(channel.kind), channel.target, channel.secret, message)
                )
            return attempts

    async def _record(self, results: list[tuple[int, str | None]]) -> None:
        settings = self.ctx.settings
        now = now_utc()
        async with self.ctx.write() as session:
            repo = AlertRepository(session)
            for delivery_id, error in results:
                delivery = await repo.delivery(delivery_id)
                if delivery is None or delivery.status != DeliveryStatus.PENDING.value:
                    continue
                delivery.attempts += 1
                if error is None:
                    delivery.status = DeliveryStatus.DELIVERED.value
                    delivery.delivered_at = now
                    continue
                delivery.last_error = error
                if delivery.attempts >= settings.alert_delivery_attempts:
                    delivery.status = DeliveryStatus.FAILED.value
                    log.warning("alert delivery %s failed for good: %s", delivery_id, error)
                else:
                    delay = retry_delay_s(
                        delivery.attempts, settings.alert_retry_base_s, settings.alert_retry_max_s
                    )
                    delivery.next_attempt_at = now + timedelta(seconds=delay)
