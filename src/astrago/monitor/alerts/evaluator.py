"""The built-in rules, evaluated in the background: each cycle reads a few columns, opens the alerts whose
condition holds and resolves those whose condition ended. Only changes write, so a quiet platform costs
a handful of reads per cycle."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from astrago.domain.enums import WorkloadStatus
from astrago.domain.status import LIVE_STATUSES
from astrago.monitor.alerts.evidence import UtilisationReader, mean_percent
from astrago.monitor.alerts.rules import AlertRule, RuleThreshold, Severity
from astrago.monitor.alerts.service import AlertService, now_utc
from astrago.services.context import ServiceContext
from astrago.services.quotas import usage_by_resource
from astrago.store.models import Workload
from astrago.store.repositories import WorkspaceRepository
from astrago.store.repositories.alerts import AlertRepository, AlertSubjectRepository

log = logging.getLogger(__name__)
FAILED_LOOKBACK = timedelta(days=1)  # failures older than this are not announced (e.g. after an upgrade)
FAILED_OPEN_FOR = timedelta(days=1)  # a failure's alert resolves itself after a day unless closed sooner


@dataclass(frozen=True)
class Finding:
    """A condition that holds now."""

    key: str
    severity: Severity
    summary: str
    workspace: str | None = None
    workload_id: str | None = None
    node: str | None = None


def _uses_gpus(workload: Workload) -> bool:
    resources = workload.spec.get("resources", {})
    return bool(resources.get("gpus") or resources.get("gpu_share_milli") or resources.get("mig_profile"))


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:g} min"


class RuleEvaluator:
    def __init__(
        self, ctx: ServiceContext, alerts: AlertService, telemetry: UtilisationReader | None
    ) -> None:
        self.ctx = ctx
        self.alerts = alerts
        self.telemetry = telemetry

    async def evaluate(self, now: datetime | None = None) -> None:
        now = now or now_utc()
        thresholds = await self.alerts.thresholds()
        checks = {
            AlertRule.GPU_IDLE: self._gpu_idle,
            AlertRule.WORKLOAD_PENDING: self._pending,
            AlertRule.QUOTA_HIGH: self._quota,
            AlertRule.NODE_LOST: self._node_lost,
        }
        for rule, check in checks.items():
            threshold = thresholds[rule]
            try:
                findings = await check(threshold, now) if threshold.enabled else []
                await self._apply(rule, findings, "rule disabled" if not threshold.enabled else None)
            except Exception:
                log.exception("could not evaluate alert rule %s; retrying next cycle", rule.value)
        try:
            await self._failed(thresholds[AlertRule.JOB_FAILED], now)
        except Exception:
            log.exception("could not evaluate alert rule %s; retrying next cycle", AlertRule.JOB_FAILED.value)

    async def _apply(self, rule: AlertRule, findings: Iterable[Finding], resolution: str | None) -> None:
        """Open what holds; resolve the open alerts of this rule whose condition is gone."""
        holding = {f.key: f for f in findings}
        async with self.ctx.read() as session:
            already_open = {a.key for a in await AlertRepository(session).open_of_rule(rule.value)}
        for finding in holding.values():
            if finding.key in already_open:
                continue  # read first: a write transaction per cycle per open alert would cost the writers
            await self.alerts.raise_alert(
                rule,
                finding.key,
                finding.severity,
                finding.summary,
                workspace=finding.workspace,
                workload_id=finding.workload_id,
                node=finding.node,
            )
        for key in already_open - holding.keys():
            await self.alerts.resolve_alert(rule, key, resolution)

    async def _gpu_idle(self, threshold: RuleThreshold, now: datetime) -> list[Finding]:
        if self.telemetry is None:
            return []
        window = timedelta(seconds=threshold.for_s or 0)
        below = threshold.threshold or 0.0
        async with self.ctx.read() as session:
            running = await AlertSubjectRepository(session).workloads([WorkloadStatus.RUNNING.value])
        findings = []
        for workload in running:
            if not _uses_gpus(workload) or workload.started_at is None or workload.started_at > now - window:
                continue
            mean, samples = mean_percent(await self.telemetry.utilisation(workload.id, now - window, now))
            if mean is not None and samples and mean < below:
                findings.append(
                    Finding(
                        workload.id,
                        Severity.WARNING,
                        f"workload {workload.name} ({workload.id}) holds GPUs it does not use: mean "
                        f"utilisation {mean:.1f} % over the last {_minutes(window.total_seconds())} "
                        f"(threshold {below:g} %)",
                        workload_id=workload.id,
                    )
                )
        return findings

    async def _pending(self, threshold: RuleThreshold, now: datetime) -> list[Finding]:
        since = now - timedelta(seconds=threshold.for_s or 0)
        async with self.ctx.read() as session:
            pending = await AlertSubjectRepository(session).workloads([WorkloadStatus.PENDING.value])
        return [
            Finding(
                w.id,
                Severity.WARNING,
                f"workload {w.name} ({w.id}) has waited {_minutes((now - w.created_at).total_seconds())}"
                f" in the queue: {w.reason or 'waiting for the scheduler'}",
                workload_id=w.id,
            )
            for w in pending
            if w.created_at <= since
        ]

    async def _quota(self, threshold: RuleThreshold, now: datetime) -> list[Finding]:
        percent = threshold.threshold if threshold.threshold is not None else 100.0
        async with self.ctx.read() as session:
            subjects = AlertSubjectRepository(session)
            limits = await subjects.gpu_limits()
            live = await subjects.workloads([s.value for s in LIVE_STATUSES])
            names = {w.id: w.name for w in await WorkspaceRepository(session).list()}
        findings = []
        for workspace_id, limit in limits.items():
            used = usage_by_resource(w for w in live if w.workspace_id == workspace_id).get("gpu", 0)
            share = 100.0 * used / limit
            if share >= percent and workspace_id in names:
                name = names[workspace_id]
                findings.append(
                    Finding(
                        name,
                        Severity.WARNING,
                        f"workspace {name} uses {used / 1000:g} of its {limit / 1000:g} GPUs ({share:.0f} %)",
                        workspace=workspace_id,
                    )
                )
        return findings

    async def _node_lost(self, threshold: RuleThreshold, now: datetime) -> list[Finding]:
        since = now - timedelta(seconds=threshold.for_s or 0)
        async with self.ctx.read() as session:
            nodes = await AlertSubjectRepository(session).nodes()
        return [
            Finding(
                n.name,
                Severity.CRITICAL,
                f"node {n.name} has not reported since {n.last_seen_at.isoformat(timespec='seconds')}",
                node=n.name,
            )
            for n in nodes
            if n.last_seen_at < since
        ]

    async def _failed(self, threshold: RuleThreshold, now: datetime) -> None:
        """A failure is an event, not a state: announced once (never again for the same workload), open
        until someone resolves it or a day passes."""
        rule = AlertRule.JOB_FAILED
        if threshold.enabled:
            async with self.ctx.read() as session:
                failed = await AlertSubjectRepository(session).failed_since(now - FAILED_LOOKBACK)
                known = await AlertRepository(session).raised_keys(rule.value, [w.id for w in failed])
                new = [w for w in failed if w.id not in known]
            for workload in new:
                await self.alerts.raise_alert(
                    rule,
                    workload.id,
                    Severity.WARNING,
                    f"workload {workload.name} ({workload.id}) failed: "
                    f"{workload.reason or 'no reason given'}",
                    workload_id=workload.id,
                )
        async with self.ctx.read() as session:
            stale = [
                a.key
                for a in await AlertRepository(session).open_of_rule(rule.value)
                if not threshold.enabled or a.opened_at < now - FAILED_OPEN_FOR
            ]
        for key in stale:
            await self.alerts.resolve_alert(
                rule, key, "rule disabled" if not threshold.enabled else "a day old"
            )
