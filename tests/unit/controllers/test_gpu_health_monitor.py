"""The GPU health monitor turns each reading into per-GPU signals and Xid lists for the fencing service, and
never stops on a source that is missing or fails a reading."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import pytest

from astrago.config import Settings
from astrago.controllers.gpu_health import GpuHealthMonitor, gpu_health_monitor, reading_health
from astrago.domain.gpu_health import HealthSignals
from astrago.gpu.model import GpuHealthSignals, Slowdown, SourceReading, XidEvent
from astrago.gpu.sources.base import SourceFailed, SourceUnavailable
from astrago.monitor.prometheus_health import PrometheusHealth


class _Fences:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Mapping[int, HealthSignals], Mapping[int, Sequence[int]]]] = []

    async def observe(
        self,
        node: str,
        signals: Mapping[int, HealthSignals],
        xids: Mapping[int, Sequence[int]],
        at: datetime | None = None,
    ) -> list[Any]:
        self.calls.append((node, signals, xids))
        return []


class _Source:
    name = "test"

    def __init__(self, readings: list[SourceReading | Exception]) -> None:
        self.readings = readings
        self.closed = False

    def read(self) -> SourceReading:
        item = self.readings.pop(0) if self.readings else SourceReading()
        if isinstance(item, Exception):
            raise item
        return item

    def close(self) -> None:
        self.closed = True


SICK = SourceReading(
    health=[
        GpuHealthSignals(gpu_index=0, slowdowns=frozenset({Slowdown.SW_THERMAL, Slowdown.HW})),
        GpuHealthSignals(gpu_index=1, ecc_uncorrectable=1),
    ],
    events=[XidEvent(2, 79), XidEvent(2, 13), XidEvent(0, 48)],
)


def test_a_reading_becomes_signals_and_xids_per_gpu() -> None:
    signals, xids = reading_health(SICK)
    assert signals[0] == HealthSignals(slowdowns=("hw", "sw_thermal"))
    assert signals[1] == HealthSignals(ecc_uncorrectable=1)
    assert xids == {2: [79, 13], 0: [48]}


async def test_the_monitor_reports_readings_survives_failures_and_reopens_a_missing_source(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fences = _Fences()
    source = _Source([SICK, SourceFailed("nvidia-smi timed out"), SourceReading()])
    opened: list[int] = []

    def open_source() -> _Source:
        opened.append(1)
        if len(opened) == 1:
            raise SourceUnavailable("no driver yet")
        return source

    monitor = GpuHealthMonitor(fences, open_source, node="gpu-a", interval_s=0.01)  # type: ignore[arg-type]
    task = asyncio.create_task(monitor.run())
    for _ in range(300):
        if len(source.readings) == 0 and fences.calls:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(opened) == 2  # retried after the source was unavailable
    assert fences.calls[0][0] == "gpu-a"
    assert fences.calls[0][2] == {2: [79, 13], 0: [48]}
    assert len(fences.calls) == 1  # the failed reading and the empty one report nothing
    assert "reading failed (nvidia-smi timed out)" in caplog.text
    assert source.closed


@pytest.mark.parametrize(
    ("health_url", "telemetry_url", "read_from"),
    [
        (None, None, None),  # a cluster without Prometheus: admins cordon by hand
        (None, "http://prometheus:9090", "http://prometheus:9090"),  # the telemetry Prometheus
        ("http://health-prom:9090", "http://prometheus:9090", "http://health-prom:9090"),
    ],
)
def test_on_kubernetes_the_monitor_reads_prometheus(
    tmp_path: Any, health_url: str | None, telemetry_url: str | None, read_from: str | None
) -> None:
    settings = Settings(
        data_dir=tmp_path,
        backend="kubernetes",
        gpu_health_prometheus_url=health_url,
        telemetry_prometheus_url=telemetry_url,
    )
    services = SimpleNamespace(ctx=SimpleNamespace(sessions=None), fences=object())
    monitor = gpu_health_monitor(settings, services)  # type: ignore[arg-type]
    if read_from is None:
        assert monitor is None
    else:
        assert isinstance(monitor, PrometheusHealth)
        assert monitor.url == read_from
