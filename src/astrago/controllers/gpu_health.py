"""The GPU health monitor: reads the GPU source every few seconds and hands what it says about each GPU's
health (Xid errors, ECC, pending memory repairs, lost GPUs, slowdowns) to the fencing service.

On one machine (the local backend) the server reads its own GPUs; on Kubernetes it reads the GPU exporters'
series from Prometheus (`monitor/prometheus_health.py`). The source is opened and read in a worker
thread (NVML and nvidia-smi calls block); a source that cannot be opened is retried with backoff, a reading
that fails is logged and the next one tried: health monitoring never stops the server."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable

from astrago.backends.local.inventory import node_name
from astrago.config import Settings
from astrago.controllers.lease import LeaderLease
from astrago.domain.gpu_health import HealthSignals
from astrago.gpu.model import GpuHealthSignals, SourceReading
from astrago.gpu.sources import GpuSource, SourceFailed, SourceUnavailable
from astrago.monitor.prometheus_health import LEASE_RENEW_S, PrometheusHealth
from astrago.monitor.sources import configured_source_kind, open_configured_source
from astrago.services.fences import FenceService
from astrago.services.registry import Services

log = logging.getLogger(__name__)

REOPEN_BACKOFF_MAX_S = 300.0


def domain_signals(signals: GpuHealthSignals) -> HealthSignals:
    return HealthSignals(
        lost=signals.lost,
        ecc_uncorrectable=signals.ecc_uncorrectable,
        retired_pages_pending=signals.retired_pages_pending,
        remapped_rows_pending=signals.remapped_rows_pending,
        remapping_failed=signals.remapping_failed,
        slowdowns=tuple(sorted(s.value for s in signals.slowdowns)),
    )


def reading_health(reading: SourceReading) -> tuple[dict[int, HealthSignals], dict[int, list[int]]]:
    """Per GPU index: its signals, and the Xid errors the reading brought (in order)."""
    signals = {h.gpu_index: domain_signals(h) for h in reading.health}
    xids: dict[int, list[int]] = defaultdict(list)
    for event in reading.events:
        xids[event.gpu_index].append(event.xid)
    return signals, dict(xids)


class GpuHealthMonitor:
    def __init__(
        self,
        fences: FenceService,
        open_source: Callable[[], GpuSource],
        node: str,
        interval_s: float,
    ) -> None:
        self.fences = fences
        self.open_source = open_source
        self.node = node
        self.interval_s = interval_s
        self._source: GpuSource | None = None

    async def run(self) -> None:
        backoff = self.interval_s
        try:
            while True:
                if self._source is None:
                    try:
                        self._source = await asyncio.to_thread(self.open_source)
                        backoff = self.interval_s
                    except (SourceUnavailable, ValueError, OSError) as exc:
                        log.warning("GPU health: no source (%s); trying again in %.0fs", exc, backoff)
                        await asyncio.sleep(backoff)
                        backoff = min(backoff * 2, REOPEN_BACKOFF_MAX_S)
                        continue
                await self.check_once()
                await asyncio.sleep(self.interval_s)
        finally:
            if self._source is not None:
                self._source.close()

    async def check_once(self) -> None:
        assert self._source is not None
        try:
            reading = await asyncio.to_thread(self._source.read)
        except SourceFailed as exc:
            log.warning("GPU health: reading failed (%s); next try in %.0fs", exc, self.interval_s)
            return
        signals, xids = reading_health(reading)
        if not signals and not xids:
            return
        try:
            await self.fences.observe(self.node, signals, xids)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("GPU health: could not record a reading of node %s", self.node)


def gpu_health_monitor(settings: Settings, services: Services) -> GpuHealthMonitor | PrometheusHealth | None:
    """On one machine (local backend), the monitor of this machine's GPUs, reading the same `gpu_source`
    telemetry samples (its own instance: each keeps its own Xid event queue). On Kubernetes the server does
    not run on the GPU nodes: it reads their exporters' health series from Prometheus. None where there is
    nothing to read: simulated GPUs without a source, `none`, a cluster without a Prometheus URL."""
    if settings.backend == "kubernetes":
        url = settings.gpu_health_prometheus_url or settings.telemetry_prometheus_url
        if not url:
            return None
        lease = LeaderLease(services.ctx.sessions, "gpu-health", ttl_s=3 * LEASE_RENEW_S)
        return PrometheusHealth(services.fences, url, settings.gpu_health_interval_s, lease)
    if settings.backend != "local" or configured_source_kind(settings) is None:
        return None

    def source() -> GpuSource:
        opened = open_configured_source(settings)
        if opened is None:
            raise SourceUnavailable("no GPU driver on this machine")
        return opened

    return GpuHealthMonitor(
        services.fences, source, node=node_name(), interval_s=settings.gpu_health_interval_s
    )
