"""GPU health fencing and admin cordons: which GPUs and nodes take no new work, and why.

Two ways in:
- the health monitor (`controllers/gpu_health.py`) reports what the GPU source read; the rule in
  `domain/gpu_health.py` decides the state, and a change is recorded, audited (actor: the system), announced
  on the running workloads of that GPU (an event each) and raised as the "gpu-unhealthy" alert;
- an admin cordons or uncordons a node or GPU (`astrago node cordon NODE [--gpu INDEX]`), audited.

The scheduler reads the result through `load_fences` (see `services/snapshot.py`): a fenced or cordoned GPU
takes no new placement and a pending workload that could have used it names it."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from astrago.auth.principal import Principal
from astrago.domain.changes import ChangeKind
from astrago.domain.gpu_health import HEALTHY, GpuHealth, GpuHealthState, HealthSignals, next_health
from astrago.domain.status import LIVE_STATUSES
from astrago.monitor.alerts.rules import AlertRule, Severity
from astrago.monitor.alerts.service import AlertService
from astrago.services.context import ServiceContext
from astrago.services.errors import InvalidInput, NotFound
from astrago.services.schemas import CordonOut
from astrago.services.users import require_admin
from astrago.store.models import GpuCordon, GpuHealthRecord, NodeCordon
from astrago.store.repositories import (
    AuditRepository,
    ChangeRepository,
    EventRepository,
    FenceRepository,
    NodeRepository,
)

log = logging.getLogger(__name__)

SYSTEM_ACTOR = None  # audit records of the health monitor have no user


def gpu_target(node: str, gpu_index: int) -> str:
    return f"{node}/gpu{gpu_index}"


def _cordon_words(kind: str, reason: str | None, by: str | None) -> str:
    by_whom = f" by {by}" if by else ""
    return f"{kind} is cordoned{by_whom}" + (f": {reason}" if reason else "")


@dataclass(frozen=True)
class Fences:
    """What keeps nodes and GPUs out of new placements, as sentences that name them."""

    health: Mapping[tuple[str, int], GpuHealthRecord] = field(default_factory=dict)
    node_cordons: Mapping[str, NodeCordon] = field(default_factory=dict)
    gpu_cordons: Mapping[tuple[str, int], GpuCordon] = field(default_factory=dict)

    def node_note(self, node: str) -> str | None:
        cordon = self.node_cordons.get(node)
        if cordon is None:
            return None
        return _cordon_words(f"node {node}", cordon.reason, cordon.cordoned_by)

    def gpu_note(self, node: str, gpu_index: int) -> str | None:
        record = self.health.get((node, gpu_index))
        if record is not None and record.state == GpuHealthState.UNHEALTHY.value:
            return f"GPU {gpu_index} on node {node} is fenced: {record.cause}"
        cordon = self.gpu_cordons.get((node, gpu_index))
        if cordon is not None:
            return _cordon_words(f"GPU {gpu_index} on node {node}", cordon.reason, cordon.cordoned_by)
        return None


NO_FENCES = Fences()


async def load_fences(session: AsyncSession) -> Fences:
    repo = FenceRepository(session)
    return Fences(
        health={(r.node, r.gpu_index): r for r in await repo.health_records()},
        node_cordons={c.node: c for c in await repo.node_cordons()},
        gpu_cordons={(c.node, c.gpu_index): c for c in await repo.gpu_cordons()},
    )


def cordon_out(cordon: NodeCordon | GpuCordon | None) -> CordonOut | None:
    if cordon is None:
        return None
    return CordonOut(reason=cordon.reason, cordoned_by=cordon.cordoned_by, cordoned_at=cordon.cordoned_at)


@dataclass(frozen=True, slots=True)
class HealthChange:
    """A GPU whose recorded state changed after a reading."""

    node: str
    gpu_index: int
    before: GpuHealth
    after: GpuHealth
    workloads: tuple[str, ...]  # live workloads holding the GPU


def _recorded(record: GpuHealthRecord | None) -> GpuHealth:
    if record is None:
        return HEALTHY
    return GpuHealth(GpuHealthState(record.state), record.cause, record.sticky)


class FenceService:
    def __init__(self, ctx: ServiceContext, alerts: GpuAlerts | None = None) -> None:
        self.ctx = ctx
        self.alerts = alerts

    # -- from the health monitor ------------------------------------------------------------------------

    async def observe(
        self,
        node: str,
        signals: Mapping[int, HealthSignals],
        xids: Mapping[int, Sequence[int]],
        at: datetime | None = None,
    ) -> list[HealthChange]:
        """Apply one reading of a node's GPUs. GPUs absent from `signals` and `xids` keep their state."""
        at = at or datetime.now(UTC)
        gpus = sorted(set(signals) | set(xids))
        async with self.ctx.read() as session:  # most readings change nothing: read before writing
            recorded = {
                r.gpu_index: _recorded(r) for r in await FenceRepository(session).health_records(node)
            }
        wanted = {
            index: next_health(
                recorded.get(index, HEALTHY), signals.get(index, HealthSignals()), xids.get(index, ())
            )
            for index in gpus
        }
        if all(wanted[index] == recorded.get(index, HEALTHY) for index in gpus):
            return []
        changes: list[HealthChange] = []
        async with self.ctx.write() as session:
            repo = FenceRepository(session)
            for gpu_index in gpus:
                before = _recorded(await repo.health(node, gpu_index))  # as of this transaction
                after = next_health(before, signals.get(gpu_index, HealthSignals()), xids.get(gpu_index, ()))
                if after == before:
                    continue
                workloads = await repo.workloads_on_gpu(node, gpu_index, [s.value for s in LIVE_STATUSES])
                change = HealthChange(node, gpu_index, before, after, tuple(workloads))
                await self._record(session, change, at)
                changes.append(change)
        for change in changes:
            await self._notify(change)
        if any(c.after.fenced != c.before.fenced for c in changes):
            self.ctx.wake_controllers()
        return changes

    async def _record(self, session: AsyncSession, change: HealthChange, at: datetime) -> None:
        repo = FenceRepository(session)
        target = gpu_target(change.node, change.gpu_index)
        after = change.after
        if after.state is GpuHealthState.HEALTHY:
            await repo.clear_health(change.node, change.gpu_index)
            detail = f"healthy again (was {change.before.state.value}: {change.before.cause})"
        else:
            await repo.set_health(
                change.node,
                change.gpu_index,
                state=after.state.value,
                cause=after.cause or "",
                sticky=after.sticky,
                at=at,
            )
            detail = f"{after.state.value}: {after.cause}"
        AuditRepository(session).add(SYSTEM_ACTOR, "gpu.health", target, "ok", detail)
        ChangeRepository(session).record(ChangeKind.NODE, change.node)
        if after.fenced and not change.before.fenced:
            events = EventRepository(session)
            for workload_id in change.workloads:
                events.add(
                    workload_id,
                    "GpuUnhealthy",
                    f"GPU {change.gpu_index} on node {change.node} it runs on is fenced: {after.cause}. "
                    "It keeps running, but its results may be affected; it takes no new work",
                )
        log.warning("GPU %s: %s", target, detail)

    async def _notify(self, change: HealthChange) -> None:
        if self.alerts is None:
            return
        if change.after.fenced and not change.before.fenced:
            await self.alerts.unhealthy(change)
        elif change.before.fenced and not change.after.fenced:
            await self.alerts.healthy_again(change.node, change.gpu_index)

    # -- by an admin -----------------------------------------------------------------------------------

    async def cordon(
        self, principal: Principal, node: str, gpu_index: int | None, reason: str | None
    ) -> CordonOut:
        require_admin(principal, "cordon nodes and GPUs")
        reason = (reason or "").strip() or None
        target = node if gpu_index is None else gpu_target(node, gpu_index)
        async with self.ctx.mutation(principal, "node.cordon", target) as mutation:
            await self._check_exists(mutation.session, node, gpu_index)
            repo = FenceRepository(mutation.session)
            now = datetime.now(UTC)
            cordon: NodeCordon | GpuCordon
            if gpu_index is None:
                cordon = await repo.cordon_node(node, reason, principal.username, now)
            else:
                cordon = await repo.cordon_gpu(node, gpu_index, reason, principal.username, now)
            mutation.detail = reason
            ChangeRepository(mutation.session).record(ChangeKind.NODE, node)
            out = cordon_out(cordon)
        self.ctx.wake_controllers()
        assert out is not None
        return out

    async def uncordon(self, principal: Principal, node: str, gpu_index: int | None) -> bool:
        """Back into service. For a GPU this also clears its health fence: an admin who uncordons a GPU
        fenced by an Xid has looked at it. A condition still reported (lost, ECC) fences it again at the
        next reading. Returns whether anything was cleared."""
        require_admin(principal, "uncordon nodes and GPUs")
        target = node if gpu_index is None else gpu_target(node, gpu_index)
        cleared_fence: GpuHealth | None = None
        async with self.ctx.mutation(principal, "node.uncordon", target) as mutation:
            await self._check_exists(mutation.session, node, gpu_index)
            repo = FenceRepository(mutation.session)
            if gpu_index is None:
                cleared = await repo.uncordon_node(node)
            else:
                cleared = await repo.uncordon_gpu(node, gpu_index)
                record = await repo.health(node, gpu_index)
                if record is not None:
                    cleared_fence = _recorded(record)
                    cleared = await repo.clear_health(node, gpu_index) or cleared
                    mutation.detail = f"cleared the health fence: {record.cause}"
            if cleared:
                ChangeRepository(mutation.session).record(ChangeKind.NODE, node)
        if (
            cleared_fence is not None
            and cleared_fence.fenced
            and self.alerts is not None
            and gpu_index is not None
        ):
            await self.alerts.healthy_again(node, gpu_index)
        self.ctx.wake_controllers()
        return cleared

    async def _check_exists(self, session: AsyncSession, node: str, gpu_index: int | None) -> None:
        found = await NodeRepository(session).get(node)
        if found is None:
            raise NotFound(f"no node named {node!r}")
        if gpu_index is not None and gpu_index not in {d.index for d in found.devices}:
            indices = ", ".join(str(d.index) for d in found.devices) or "none"
            raise InvalidInput(f"node {node} has no GPU {gpu_index} (its GPUs: {indices})")


class GpuAlerts:
    """Raises the "gpu-unhealthy" alert when a GPU is fenced and resolves it when it is back (healthy again,
    or cleared by an admin). One alert per GPU (key `node/gpuN`); notifications go to its subscribers."""

    def __init__(self, alerts: AlertService) -> None:
        self.alerts = alerts

    async def unhealthy(self, change: HealthChange) -> None:
        running = ", ".join(change.workloads) or "nothing"
        await self.alerts.raise_alert(
            AlertRule.GPU_UNHEALTHY,
            gpu_target(change.node, change.gpu_index),
            Severity.CRITICAL,
            f"GPU {change.gpu_index} on node {change.node} is fenced: {change.after.cause}. "
            f"It takes no new work; running on it: {running}",
            node=change.node,
        )

    async def healthy_again(self, node: str, gpu_index: int) -> None:
        await self.alerts.resolve_alert(
            AlertRule.GPU_UNHEALTHY, gpu_target(node, gpu_index), "back in service"
        )
