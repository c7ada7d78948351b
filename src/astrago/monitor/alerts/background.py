"""The alerting background work of one server: rule evaluation and idle reclaim (every
`alert_evaluation_interval_s`) and the delivery worker, in one process at a time (a lease in the
database, like the controllers'), so two replicas neither double-warn nor double-send."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from astrago.controllers.lease import LeaderLease
from astrago.monitor.alerts.channels import Senders
from astrago.monitor.alerts.delivery import DeliveryWorker
from astrago.monitor.alerts.evaluator import RuleEvaluator
from astrago.monitor.alerts.reclaim import ReclaimService
from astrago.monitor.alerts.service import AlertService
from astrago.services.context import ServiceContext

log = logging.getLogger(__name__)
LEASE_RENEW_S = 10.0


async def evaluate_forever(evaluator: RuleEvaluator, reclaim: ReclaimService, interval_s: float) -> None:
    while True:
        try:
            await evaluator.evaluate()
        except Exception:
            log.exception("alert evaluation failed; retrying next cycle")
        try:
            await reclaim.evaluate()
        except Exception:
            log.exception("idle reclaim pass failed; retrying next cycle")
        await asyncio.sleep(interval_s)


async def run_alerting(ctx: ServiceContext, alerts: AlertService, reclaim: ReclaimService) -> None:
    """Hold the "alerts" lease and, while held, evaluate and deliver."""
    lease = LeaderLease(ctx.sessions, "alerts", ttl_s=3 * LEASE_RENEW_S)
    senders = Senders(ctx.settings)
    evaluator = RuleEvaluator(ctx, alerts, reclaim.telemetry)
    running: list[asyncio.Task[None]] = []
    try:
        while True:
            try:
                leading = await lease.try_acquire()
            except Exception:
                log.exception("could not renew the alerts lease")
                leading = False
            if leading and not running:
                interval = ctx.settings.alert_evaluation_interval_s
                running = [
                    asyncio.create_task(evaluate_forever(evaluator, reclaim, interval), name="alert-rules"),
                    asyncio.create_task(DeliveryWorker(ctx, alerts, senders).run(), name="alert-deliveries"),
                ]
            elif not leading and running:
                log.warning("lost the alerts lease; pausing until it is free again")
                await _cancel(running)
                running = []
            await asyncio.sleep(LEASE_RENEW_S)
    finally:
        await _cancel(running)
        await senders.aclose()
        with contextlib.suppress(Exception):
            await lease.release()


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
