"""Telemetry as a background task of the server: the sampler and the rollup, on the leader only (one
server process samples and rolls up, however many run), like the controllers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from astrago.backends.base import Backend
from astrago.backends.local.backend import LocalBackend
from astrago.controllers.lease import LeaderLease
from astrago.monitor.attribution import ReplicaRef, Root
from astrago.monitor.prometheus import PrometheusReader, PrometheusSampler
from astrago.monitor.rollup import roll_up
from astrago.monitor.sampler import GpuSampler
from astrago.monitor.sources import open_configured_source
from astrago.services.context import ServiceContext

log = logging.getLogger(__name__)

LEASE_RENEW_S = 10.0
ROLLUP_EVERY_S = 300.0


class Telemetry:
    """Built at server start (a bad `gpu_source` is a usage error then); `run()` works while leading."""

    def __init__(self, ctx: ServiceContext, backend: Backend) -> None:
        self.ctx = ctx
        self.backend = backend
        self.source = open_configured_source(ctx.settings)
        self.sampler: GpuSampler | PrometheusSampler | None = None

    async def run(self) -> None:
        lease = LeaderLease(self.ctx.sessions, "telemetry", ttl_s=3 * LEASE_RENEW_S)
        working: asyncio.Task[None] | None = None
        try:
            while True:
                try:
                    leading = await lease.try_acquire()
                except Exception:
                    log.exception("could not renew the telemetry lease")
                    leading = False
                if leading and working is None:
                    working = asyncio.create_task(self._work(), name="telemetry")
                elif not leading and working is not None:
                    working.cancel()
                    working = None
                await asyncio.sleep(LEASE_RENEW_S)
        finally:
            if working is not None:
                working.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await working
            with contextlib.suppress(Exception):
                await lease.release()
            if self.source is not None:
                self.source.close()

    async def _work(self) -> None:
        tasks = [asyncio.create_task(self._rollups(), name="telemetry-rollup")]
        sampler = await self._sampler()
        if sampler is not None:
            tasks.append(asyncio.create_task(sampler.run(), name="telemetry-sampler"))
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            if isinstance(sampler, PrometheusSampler):
                await sampler.reader.close()

    async def _sampler(self) -> GpuSampler | PrometheusSampler | None:
        settings = self.ctx.settings
        if settings.backend == "kubernetes" and settings.telemetry_prometheus_url:
            reader = PrometheusReader(settings.telemetry_prometheus_url)
            return PrometheusSampler(self.ctx, reader, settings.namespace)
        if self.source is None or not isinstance(self.backend, LocalBackend):
            return None
        nodes = await self.backend.inventory()
        backend = self.backend

        def runners() -> Sequence[Root]:
            return [
                Root(r.pid, r.start_ticks, ReplicaRef(r.workload_id, r.replica_index))
                for r in backend.runner_processes()
            ]

        self.sampler = GpuSampler(self.ctx, self.source, nodes[0].name, runners)
        return self.sampler

    async def _rollups(self) -> None:
        settings = self.ctx.settings
        while True:
            try:
                result = await roll_up(
                    self.ctx,
                    datetime.now(UTC),
                    timedelta(seconds=settings.telemetry_raw_retention_s),
                    timedelta(days=settings.telemetry_retention_days),
                )
                if result.rolled_up or result.expired:
                    log.info(
                        "GPU samples: %s rolled up into %s, %s expired",
                        *(result.rolled_up, result.written, result.expired),
                    )
            except Exception:
                log.exception("GPU sample rollup failed; retrying later")
            await asyncio.sleep(ROLLUP_EVERY_S)
