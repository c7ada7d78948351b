"""GPU health on Kubernetes: the GPU exporter (a DaemonSet on the GPU nodes) exports what each GPU's driver
says about its health, Prometheus scrapes it, and the server reads it back through Prometheus's HTTP API and
hands it to the same rule and fencing service as on one machine.

Series read (each target carries a `node` label, relabelled from the pod's node by the chart):
- `gpu_xid_errors_total{gpu, xid}`, a counter per Xid code since the exporter started. An Xid *event* is an
  increase since the last reading. The raw samples since then are read (not only the latest value), each
  with the start time of the exporter that counted it (`gpu_exporter_start_time_seconds`, same scrape), so
  an exporter restart between two readings — the series vanishes and comes back at 1, or drops — still
  counts what the new exporter holds; a series that appears after the first reading (the exporter's first
  error of that code, or a new exporter pod) counts from 0. The first reading after the server starts (or
  takes over the lease) only records where each counter stands: an Xid raised while no server was reading
  is not fenced automatically (the conditions it leaves behind are, and the chart's `AstragoGpuFault` alert
  fires on it), and one already fenced stays fenced (the fence is in the database).
- `gpu_ecc_uncorrectable_errors`, `gpu_memory_repair_pending`, `gpu_slowdown{reason}` and `gpu_healthy`
  (0: the GPU did not answer the exporter): conditions, read as their latest values. A GPU whose exporter
  sends nothing keeps the state recorded for it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from astrago.controllers.lease import LeaderLease
from astrago.domain.gpu_health import CounterPoint, HealthSignals, counter_increase
from astrago.monitor.prometheus import PrometheusReader, PrometheusUnavailable, Series, SeriesSamples
from astrago.services.fences import FenceService, HealthChange

log = logging.getLogger(__name__)

XID_SERIES = "gpu_xid_errors_total"
ECC_SERIES = "gpu_ecc_uncorrectable_errors"
REPAIR_SERIES = "gpu_memory_repair_pending"
SLOWDOWN_SERIES = "gpu_slowdown"
ANSWERED_SERIES = "gpu_healthy"
EXPORTER_START_SERIES = "gpu_exporter_start_time_seconds"
FIRST_LOOKBACK_S = 300.0  # where each counter stands at the first reading: Prometheus's staleness window
LATE_SAMPLE_MARGIN_S = 60.0  # a scrape's sample is stamped when the scrape starts and visible when it ends
MAX_WINDOW_S = 3600.0  # after a long Prometheus outage, older samples are not fetched (values still compare)
LEASE_RENEW_S = 10.0

SeriesKey = frozenset[tuple[str, str]]
GpuRef = tuple[str, int]  # (node, GPU index)


@dataclass(frozen=True, slots=True)
class CounterMark:
    """The last sample of a counter series this monitor has accounted for."""

    at: float
    point: CounterPoint


def _gpu_of(labels: dict[str, str]) -> GpuRef | None:
    node, gpu = labels.get("node"), labels.get("gpu", "")
    return (node, int(gpu)) if node and gpu.isdigit() else None


def _key(labels: dict[str, str]) -> SeriesKey:
    return frozenset((name, value) for name, value in labels.items() if name != "__name__")


def _target(labels: dict[str, str]) -> tuple[str, str]:
    return labels.get("job", ""), labels.get("instance", "")


def exporter_starts(series: Sequence[SeriesSamples]) -> dict[tuple[str, str], dict[float, float]]:
    """Per scrape target, its exporter's start time at each scrape (a scrape stamps all its samples with
    one time, so an Xid sample finds the start time of the exporter that counted it)."""
    starts: dict[tuple[str, str], dict[float, float]] = defaultdict(dict)
    for item in series:
        starts[_target(item.labels)].update(item.samples)
    return dict(starts)


@dataclass
class XidCounters:
    """Where each Xid counter series stood at the last reading, and the events since: pure bookkeeping."""

    marks: dict[SeriesKey, CounterMark] = field(default_factory=dict)
    started: bool = False

    def events(
        self, series: Sequence[SeriesSamples], starts: dict[tuple[str, str], dict[float, float]]
    ) -> tuple[dict[GpuRef, list[int]], XidCounters]:
        """The Xid codes whose counter rose, per GPU, and the counters after these samples (returned, not
        applied: the caller keeps them once the events are recorded, so a failed write is read again).
        The first reading only records where the counters stand."""
        marks = dict(self.marks)
        events: dict[GpuRef, list[int]] = defaultdict(list)
        for item in series:
            key = _key(item.labels)
            mark = marks.get(key)
            started_at = starts.get(_target(item.labels), {})
            fresh = [
                (at, CounterPoint(value, started_at.get(at)))
                for at, value in item.samples
                if mark is None or at > mark.at
            ]
            if not fresh:
                continue
            marks[key] = CounterMark(*fresh[-1])
            gpu, xid = _gpu_of(item.labels), item.labels.get("xid", "")
            if not self.started or gpu is None or not xid.isdigit():
                continue
            previous = None if mark is None else mark.point
            if counter_increase(previous, [point for _, point in fresh]) > 0:
                events[gpu].append(int(xid))
        return dict(events), XidCounters(marks, started=True)


@dataclass
class _Conditions:
    unanswered: bool = False
    ecc_uncorrectable: int | None = None
    repair_pending: bool | None = None
    slowdowns: set[str] = field(default_factory=set)

    def signals(self) -> HealthSignals:
        return HealthSignals(
            unanswered=self.unanswered,
            ecc_uncorrectable=self.ecc_uncorrectable,
            memory_repair_pending=self.repair_pending,
            slowdowns=tuple(sorted(self.slowdowns)),
        )


def condition_signals(
    ecc: Sequence[Series], repair: Sequence[Series], slowdown: Sequence[Series], answered: Sequence[Series]
) -> dict[GpuRef, HealthSignals]:
    """Per GPU, its conditions from the latest values. Two series of one GPU (an exporter pod replaced while
    the old one's samples are still fresh) merge to the worse reading."""
    found: dict[GpuRef, _Conditions] = defaultdict(_Conditions)

    def of(series: Series) -> _Conditions | None:
        gpu = _gpu_of(series.labels)
        return None if gpu is None else found[gpu]

    for series in answered:
        if (gpu := of(series)) is not None:
            gpu.unanswered = gpu.unanswered or series.value == 0
    for series in ecc:
        if (gpu := of(series)) is not None:
            gpu.ecc_uncorrectable = max(int(series.value), gpu.ecc_uncorrectable or 0)
    for series in repair:
        if (gpu := of(series)) is not None:
            gpu.repair_pending = bool(gpu.repair_pending) or series.value > 0
    for series in slowdown:
        reason = series.labels.get("reason")
        if reason and series.value > 0 and (gpu := of(series)) is not None:
            gpu.slowdowns.add(reason)
    return {ref: conditions.signals() for ref, conditions in found.items()}


class PrometheusHealthMonitor:
    """Reads every GPU node's health from Prometheus each `interval_s` and hands it to the fencing service."""

    def __init__(self, fences: FenceService, reader: PrometheusReader, interval_s: float) -> None:
        self.fences = fences
        self.reader = reader
        self.interval_s = interval_s
        self.counters = XidCounters()
        self._read_until: float | None = None

    async def run(self) -> None:
        while True:
            try:
                await self.check_once(time.time())
            except PrometheusUnavailable as exc:
                log.warning("GPU health: %s; trying again in %.0fs", exc, self.interval_s)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("GPU health: a reading from Prometheus failed; trying again next interval")
            await asyncio.sleep(self.interval_s)

    async def check_once(self, now: float) -> dict[str, list[HealthChange]]:
        """One reading at `now` (Unix seconds): the changes it made, per node. Nothing is remembered unless
        every node's reading was recorded (the next reading then sees the same Xid increases again)."""
        if self._read_until is None:
            window = FIRST_LOOKBACK_S
        else:
            window = min(now - self._read_until + LATE_SAMPLE_MARGIN_S, MAX_WINDOW_S)
        selector = f"[{math.ceil(window)}s]"
        xid_series = await self.reader.range_samples(XID_SERIES + selector, at=now)
        starts = exporter_starts(await self.reader.range_samples(EXPORTER_START_SERIES + selector, at=now))
        signals = condition_signals(
            await self.reader.query(ECC_SERIES, at=now),
            await self.reader.query(REPAIR_SERIES, at=now),
            await self.reader.query(SLOWDOWN_SERIES, at=now),
            await self.reader.query(ANSWERED_SERIES, at=now),
        )
        xids, counters = self.counters.events(xid_series, starts)
        changes: dict[str, list[HealthChange]] = {}
        for node in sorted({gpu[0] for gpu in signals} | {gpu[0] for gpu in xids}):
            changes[node] = await self.fences.observe(
                node,
                {index: found for (name, index), found in signals.items() if name == node},
                {index: codes for (name, index), codes in xids.items() if name == node},
            )
        if self._read_until is None:
            log.info(
                "GPU health: reading %d GPUs of %d nodes from Prometheus at %s",
                *(len(signals.keys() | xids.keys()), len(changes), self.reader.url),
            )
        self.counters = counters
        self._read_until = now
        return changes


class PrometheusHealth:
    """Runs the monitor while this server holds the "gpu-health" lease, so that several controller replicas
    read (and count Xid increases) once. A new holder starts from where the counters stand."""

    def __init__(self, fences: FenceService, url: str, interval_s: float, lease: LeaderLease) -> None:
        self.fences = fences
        self.url = url
        self.interval_s = interval_s
        self.lease = lease

    async def run(self) -> None:
        working: asyncio.Task[None] | None = None
        reader: PrometheusReader | None = None
        try:
            while True:
                try:
                    leading = await self.lease.try_acquire()
                except Exception:
                    log.exception("could not renew the GPU health lease")
                    leading = False
                if leading and working is None:
                    reader = PrometheusReader(self.url)
                    monitor = PrometheusHealthMonitor(self.fences, reader, self.interval_s)
                    working = asyncio.create_task(monitor.run(), name="gpu-health-prometheus")
                elif not leading and working is not None:
                    await _stop(working, reader)
                    working = reader = None
                await asyncio.sleep(LEASE_RENEW_S)
        finally:
            await _stop(working, reader)
            with contextlib.suppress(Exception):
                await self.lease.release()


async def _stop(working: asyncio.Task[None] | None, reader: PrometheusReader | None) -> None:
    if working is not None:
        working.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await working
    if reader is not None:
        await reader.close()
