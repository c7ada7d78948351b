"""Idle reclaim: a running workload whose GPUs stay under a policy's utilisation threshold and whose
endpoints carry no request is warned (event, audit, an "idle-reclaim" alert to its subscribers, the
console's banner) `warn_before_s` before it would be stopped; "keep running" postpones the stop, up to a
hard cap; then it is stopped through the normal cancel path (grace period, volumes kept).

Policies are per workspace and kind; a workspace's own wins over the platform-wide one, which wins over
the settings' default for interactive workloads. Batch jobs have no default: they are reclaimed only
where an admin wrote a policy for their kind."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from astrago.auth.principal import Principal
from astrago.domain.enums import WorkloadKind, WorkloadStatus, WorkspaceRole
from astrago.monitor.alerts.evidence import UtilisationReader, mean_percent
from astrago.monitor.alerts.rules import AlertRule, IdleEvidence, IdleRule, Severity, is_idle, postponed_stop
from astrago.monitor.alerts.schemas import IdlePolicyOut, IdlePolicySet, ReclaimOut
from astrago.monitor.alerts.service import AlertService, now_utc
from astrago.services.context import ServiceContext
from astrago.services.errors import Conflict, Forbidden, NotFound
from astrago.services.users import require_admin
from astrago.services.workspaces import resolve_workspace
from astrago.store.ids import new_id
from astrago.store.models import IdlePolicy, ReclaimNotice, Workload
from astrago.store.repositories import (
    AuditRepository,
    EventRepository,
    WorkloadRepository,
    WorkspaceRepository,
)
from astrago.store.repositories.alerts import AlertSubjectRepository, ReclaimRepository

log = logging.getLogger(__name__)
ACTOR = "system:idle-reclaim"  # not a valid username: the audit trail cannot confuse it with a person


@dataclass(frozen=True)
class _Policies:
    by_scope: dict[tuple[str | None, str], IdlePolicy]
    default: IdleRule | None  # the settings' policy for interactive workloads

    def rule_for(self, workspace_id: str, kind: str) -> IdleRule | None:
        policy = self.by_scope.get((workspace_id, kind)) or self.by_scope.get((None, kind))
        if policy is not None:
            return _rule(policy) if policy.enabled else None
        return self.default if kind == WorkloadKind.INTERACTIVE.value else None


def _rule(policy: IdlePolicy) -> IdleRule:
    return IdleRule(
        gpu_util_below_percent=policy.gpu_util_below_percent,
        idle_for_s=policy.idle_for_s,
        warn_before_s=policy.warn_before_s,
        postpone_s=policy.postpone_s,
        max_postpone_s=policy.max_postpone_s,
    )


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:g} min"


def _at(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def reclaim_out(notice: ReclaimNotice) -> ReclaimOut:
    return ReclaimOut(
        workload_id=notice.workload_id,
        warned_at=notice.warned_at,
        stop_at=notice.stop_at,
        latest_stop_at=notice.latest_stop_at,
        can_postpone=notice.stop_at < notice.latest_stop_at,
        kept_by=notice.kept_by,
        kept_at=notice.kept_at,
    )


class ReclaimService:
    def __init__(
        self, ctx: ServiceContext, alerts: AlertService, telemetry: UtilisationReader | None
    ) -> None:
        self.ctx = ctx
        self.alerts = alerts
        self.telemetry = telemetry

    def _default(self) -> IdleRule | None:
        s = self.ctx.settings
        if not s.reclaim_interactive:
            return None
        return IdleRule(
            gpu_util_below_percent=s.reclaim_gpu_util_below_percent,
            idle_for_s=s.reclaim_idle_for_s,
            warn_before_s=min(s.reclaim_warn_before_s, s.reclaim_idle_for_s),
            postpone_s=s.reclaim_postpone_s,
            max_postpone_s=s.reclaim_max_postpone_s,
        )

    async def _policies(self, session: AsyncSession) -> _Policies:
        stored = await ReclaimRepository(session).policies()
        return _Policies({(p.workspace_id, p.kind): p for p in stored}, self._default())

    # -- the background pass

    async def evaluate(self, now: datetime | None = None) -> None:
        now = now or now_utc()
        async with self.ctx.read() as session:
            running = await AlertSubjectRepository(session).workloads([WorkloadStatus.RUNNING.value])
            policies = await self._policies(session)
            reclaim = ReclaimRepository(session)
            notices = await reclaim.notices()
            last_requests = await reclaim.last_requests([w.id for w in running])
        running_ids = {w.id for w in running}
        for workload_id in notices.keys() - running_ids:
            await self._clear(workload_id, "the workload is no longer running", quiet=True)
        for workload in running:
            try:
                await self._check(
                    workload, policies, notices.get(workload.id), last_requests.get(workload.id), now
                )
            except Exception:
                log.exception("could not check workload %s for idleness; retrying next cycle", workload.id)

    async def _check(
        self,
        workload: Workload,
        policies: _Policies,
        notice: ReclaimNotice | None,
        last_request: datetime | None,
        now: datetime,
    ) -> None:
        rule = policies.rule_for(workload.workspace_id, workload.kind)
        if rule is None or workload.started_at is None or workload.stop_requested:
            if notice is not None:
                await self._clear(workload.id, "no idle policy applies to it any more")
            return
        if notice is None:
            since = now - timedelta(seconds=rule.warn_after_s)
            if is_idle(
                await self._evidence(workload, last_request, since, now), since, rule.gpu_util_below_percent
            ):
                await self._warn(workload, rule, now)
            return
        evidence = await self._evidence(workload, last_request, notice.warned_at, now)
        in_use = (last_request is not None and last_request >= notice.warned_at) or (
            evidence.mean_gpu_percent is not None and evidence.mean_gpu_percent >= rule.gpu_util_below_percent
        )
        if in_use:
            await self._clear(workload.id, "it is in use again")
        elif now >= notice.stop_at:
            await self._stop(workload.id, rule, now)

    async def _evidence(
        self, workload: Workload, last_request: datetime | None, since: datetime, now: datetime
    ) -> IdleEvidence:
        use = await self.telemetry.utilisation(workload.id, since, now) if self.telemetry else None
        mean, samples = mean_percent(use)
        assert workload.started_at is not None
        return IdleEvidence(workload.started_at, last_request, mean, samples)

    async def _warn(self, workload: Workload, rule: IdleRule, now: datetime) -> None:
        stop_at = now + timedelta(seconds=rule.warn_before_s)
        latest = stop_at + timedelta(seconds=rule.max_postpone_s)
        reason = (
            f"idle: GPUs under {rule.gpu_util_below_percent:g} % and no endpoint traffic for "
            f"{_minutes(rule.warn_after_s)}; it will be stopped at {_at(stop_at)} (volumes are kept) unless "
            f"someone keeps it running (`astrago keep {workload.id}` or the console's banner)"
        )
        async with self.ctx.write() as session:
            current = await WorkloadRepository(session).get(workload.id)
            reclaim = ReclaimRepository(session)
            if (
                current is None
                or current.status != WorkloadStatus.RUNNING.value
                or await reclaim.notice(workload.id)
            ):
                return
            reclaim.add_notice(
                ReclaimNotice(workload_id=workload.id, warned_at=now, stop_at=stop_at, latest_stop_at=latest)
            )
            EventRepository(session).add(workload.id, "IdleWarning", reason)
            AuditRepository(session).add(ACTOR, "workload.idle_warning", workload.id, "ok", reason)
            await self.alerts.raise_in(
                session,
                AlertRule.IDLE_RECLAIM.value,
                workload.id,
                Severity.WARNING,
                f"workload {workload.name} ({workload.id}) is {reason}",
                workload_id=workload.id,
            )
        self.alerts.deliveries_waiting.set()

    async def _clear(self, workload_id: str, why: str, quiet: bool = False) -> None:
        async with self.ctx.write() as session:
            reclaim = ReclaimRepository(session)
            if await reclaim.notice(workload_id) is None:
                return
            await reclaim.delete_notice(workload_id)
            if not quiet:
                EventRepository(session).add(
                    workload_id, "IdleWarningCleared", f"idle reclaim called off: {why}"
                )
                AuditRepository(session).add(ACTOR, "workload.idle_cleared", workload_id, "ok", why)
            await self.alerts.resolve_in(
                session, AlertRule.IDLE_RECLAIM.value, workload_id, f"called off: {why}"
            )
        self.alerts.deliveries_waiting.set()

    async def _stop(self, workload_id: str, rule: IdleRule, now: datetime) -> None:
        """The normal cancel path: the controllers stop it with the grace period; its volumes stay."""
        reason = f"reclaimed: idle (GPUs under {rule.gpu_util_below_percent:g} %, no endpoint traffic)"
        async with self.ctx.write() as session:
            workload = await WorkloadRepository(session).get(workload_id, for_update=True)
            reclaim = ReclaimRepository(session)
            await reclaim.delete_notice(workload_id)
            if workload is None or workload.status != WorkloadStatus.RUNNING.value or workload.stop_requested:
                return
            workload.stop_requested = "cancel"
            workload.stop_reason = reason
            EventRepository(session).add(workload_id, "IdleReclaimed", f"{reason}; stopping it, volumes kept")
            AuditRepository(session).add(ACTOR, "workload.reclaim", workload_id, "ok", reason)
            await self.alerts.resolve_in(
                session, AlertRule.IDLE_RECLAIM.value, workload_id, f"stopped at {_at(now)}: {reason}"
            )
        self.alerts.deliveries_waiting.set()
        self.ctx.wake_controllers()
        log.info("workload %s reclaimed: %s", workload_id, reason)

    # -- people: keep running, see what is pending

    async def _visible(self, session: AsyncSession, principal: Principal, workload_id: str) -> Workload:
        workload = await WorkloadRepository(session).get(workload_id)
        if workload is None or not principal.can(workload.workspace_id, WorkspaceRole.VIEWER):
            raise NotFound(f"workload {workload_id!r} does not exist or is not in one of your workspaces")
        return workload

    async def pending(self, principal: Principal, workload_id: str) -> ReclaimOut | None:
        async with self.ctx.read() as session:
            await self._visible(session, principal, workload_id)
            notice = await ReclaimRepository(session).notice(workload_id)
            return reclaim_out(notice) if notice else None

    async def keep(self, principal: Principal, workload_id: str) -> ReclaimOut:
        """Postpone a pending reclaim by the policy's postpone_s, never past its hard cap."""
        async with self.ctx.mutation(principal, "workload.keep", workload_id) as mutation:
            session = mutation.session
            workload = await self._visible(session, principal, workload_id)
            needed = (
                WorkspaceRole.MEMBER if workload.created_by == principal.user_id else WorkspaceRole.MANAGER
            )
            if not principal.can(workload.workspace_id, needed):
                raise Forbidden("only its submitter (as a member) or a manager of the workspace can keep it")
            reclaim = ReclaimRepository(session)
            notice = await reclaim.notice(workload_id, for_update=True)
            if notice is None:
                raise Conflict(
                    f"workload {workload_id} is not about to be reclaimed: there is nothing to postpone"
                )
            rule = (await self._policies(session)).rule_for(workload.workspace_id, workload.kind)
            postpone_s = rule.postpone_s if rule else self.ctx.settings.reclaim_postpone_s
            now = now_utc()
            new_stop = postponed_stop(notice.stop_at, now, postpone_s, notice.latest_stop_at)
            if new_stop is None:
                raise Conflict(
                    f"workload {workload_id} was already kept as long as its policy allows: it stops at "
                    f"{_at(notice.stop_at)} unless it is used"
                )
            notice.stop_at, notice.kept_by, notice.kept_at = new_stop, principal.username, now
            EventRepository(session).add(
                workload_id,
                "IdleReclaimPostponed",
                f"kept running by {principal.username} until {_at(new_stop)}",
            )
            mutation.detail = (
                f"stop postponed to {_at(new_stop)} (at the latest {_at(notice.latest_stop_at)})"
            )
            return reclaim_out(notice)

    # -- policies (admins)

    async def policies(self, principal: Principal) -> list[IdlePolicyOut]:
        async with self.ctx.read() as session:
            policies = await self._policies(session)
            names = {w.id: w.name for w in await WorkspaceRepository(session).list()}
        out = []
        if policies.default is not None and (None, WorkloadKind.INTERACTIVE.value) not in policies.by_scope:
            out.append(_policy_out(None, None, WorkloadKind.INTERACTIVE, True, policies.default))
        for (workspace_id, kind), p in sorted(
            policies.by_scope.items(), key=lambda i: (i[0][0] or "", i[0][1])
        ):
            if workspace_id is not None and not principal.can(workspace_id, WorkspaceRole.VIEWER):
                continue
            name = names.get(workspace_id) if workspace_id else None
            out.append(_policy_out(p.id, name, WorkloadKind(kind), p.enabled, _rule(p)))
        return out

    async def set_policy(self, principal: Principal, request: IdlePolicySet) -> IdlePolicyOut:
        scope = request.workspace or "*"
        async with self.ctx.mutation(
            principal, "idle_policy.set", f"{scope}/{request.kind.value}"
        ) as mutation:
            require_admin(principal, "set idle reclaim policies")
            session = mutation.session
            workspace_id = None
            if request.workspace is not None:
                workspace_id = (
                    await resolve_workspace(session, principal, request.workspace, WorkspaceRole.VIEWER)
                ).id
            repo = ReclaimRepository(session)
            policy = await repo.policy(workspace_id, request.kind.value)
            if policy is None:
                policy = IdlePolicy(id=new_id(), workspace_id=workspace_id, kind=request.kind.value)
                repo.add_policy(policy)
            warn_before = min(float(request.warn_before_s), float(request.idle_for_s))
            policy.enabled = request.enabled
            policy.gpu_util_below_percent = float(request.gpu_util_below_percent)
            policy.idle_for_s = float(request.idle_for_s)
            policy.warn_before_s = warn_before
            policy.postpone_s = float(request.postpone_s)
            policy.max_postpone_s = float(request.max_postpone_s)
            policy.updated_at = now_utc()
            await session.flush()
            rule = _rule(policy)
            mutation.detail = (
                f"enabled={policy.enabled} below={rule.gpu_util_below_percent:g}% "
                f"idle_for={rule.idle_for_s:g}s warn_before={rule.warn_before_s:g}s "
                f"postpone={rule.postpone_s:g}s max={rule.max_postpone_s:g}s"
            )
            return _policy_out(policy.id, request.workspace, request.kind, policy.enabled, rule)

    async def remove_policy(self, principal: Principal, workspace: str | None, kind: WorkloadKind) -> None:
        async with self.ctx.mutation(
            principal, "idle_policy.remove", f"{workspace or '*'}/{kind.value}"
        ) as mutation:
            require_admin(principal, "remove idle reclaim policies")
            session = mutation.session
            workspace_id = None
            if workspace is not None:
                workspace_id = (
                    await resolve_workspace(session, principal, workspace, WorkspaceRole.VIEWER)
                ).id
            repo = ReclaimRepository(session)
            policy = await repo.policy(workspace_id, kind.value)
            if policy is None:
                raise NotFound(
                    f"no idle policy for {kind.value} workloads of {workspace or 'every workspace'}"
                )
            await repo.delete_policy(policy)


def _policy_out(
    policy_id: str | None, workspace: str | None, kind: WorkloadKind, enabled: bool, rule: IdleRule
) -> IdlePolicyOut:
    return IdlePolicyOut(
        id=policy_id,
        workspace=workspace,
        kind=kind,
        enabled=enabled,
        gpu_util_below_percent=rule.gpu_util_below_percent,
        idle_for_s=rule.idle_for_s,
        warn_before_s=rule.warn_before_s,
        postpone_s=rule.postpone_s,
        max_postpone_s=rule.max_postpone_s,
    )
