"""The Kubernetes health monitor's bookkeeping: which Xid counter samples are events (first reading, new
series, exporter restarts, a failed write read again), and the per-GPU conditions from the exporter's
latest values."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import pytest

from astrago.domain.gpu_health import HealthSignals
from astrago.monitor.prometheus import Series, SeriesSamples
from astrago.monitor.prometheus_health import (
    PrometheusHealthMonitor,
    XidCounters,
    condition_signals,
    exporter_starts,
)

TARGET = {"job": "astrago-gpu", "instance": "10.0.0.7:9400", "node": "n1"}


def _xid(gpu: int, xid: int, *samples: tuple[float, float], **labels: str) -> SeriesSamples:
    return SeriesSamples({**TARGET, "gpu": str(gpu), "xid": str(xid), **labels}, list(samples))


def _starts(*samples: tuple[float, float]) -> dict[tuple[str, str], dict[float, float]]:
    return exporter_starts([SeriesSamples(dict(TARGET), list(samples))])


def test_the_first_reading_only_records_where_the_counters_stand() -> None:
    events, counters = XidCounters().events([_xid(0, 79, (10, 1), (20, 1))], {})
    assert events == {}
    events, counters = counters.events([_xid(0, 79, (10, 1), (20, 1), (30, 1))], {})
    assert events == {}  # the overlap (10, 20) is not read twice
    events, _ = counters.events([_xid(0, 79, (30, 1), (40, 2)), _xid(1, 94, (40, 1))], {})
    assert events == {("n1", 0): [79], ("n1", 1): [94]}  # a rise, and a series new since the first reading


def test_an_exporter_restart_counts_what_the_new_exporter_holds() -> None:
    _, counters = XidCounters().events([_xid(1, 79, (10, 1))], _starts((10, 100)))
    events, counters = counters.events([_xid(1, 79, (20, 1))], _starts((20, 100)))
    assert events == {}
    events, _ = counters.events([_xid(1, 79, (30, 1))], _starts((30, 500)))  # vanished, back at 1
    assert events == {("n1", 1): [79]}


def test_series_without_a_node_or_gpu_are_not_events() -> None:
    _, counters = XidCounters().events([], {})
    no_node = SeriesSamples({"job": "x", "gpu": "0", "xid": "79"}, [(10, 1)])
    no_gpu = SeriesSamples({**TARGET, "gpu": "", "xid": "79"}, [(10, 1)])
    assert counters.events([no_node, no_gpu], {})[0] == {}


def test_conditions_merge_two_series_of_one_gpu_to_the_worse() -> None:
    def series(value: float, **labels: str) -> Series:
        return Series({"node": "n1", "gpu": "0", **labels}, value)

    signals = condition_signals(
        ecc=[series(0), series(2, instance="new")],
        repair=[series(0), series(1, gpu="1")],
        slowdown=[series(1, reason="hw_thermal"), series(1, reason="sw_thermal"), series(0, reason="hw")],
        answered=[series(1), series(0, gpu="1"), series(1, node="")],
    )
    assert signals == {
        ("n1", 0): HealthSignals(
            ecc_uncorrectable=2, memory_repair_pending=False, slowdowns=("hw_thermal", "sw_thermal")
        ),
        ("n1", 1): HealthSignals(unanswered=True, memory_repair_pending=True),
    }


class _Reader:
    url = "http://prometheus:9090"

    def __init__(self) -> None:
        self.xids: list[SeriesSamples] = []
        self.queries: list[str] = []

    async def range_samples(self, promql: str, at: float) -> list[SeriesSamples]:
        self.queries.append(promql)
        return self.xids if promql.startswith("gpu_xid_errors_total") else []

    async def query(self, promql: str, at: float | None = None) -> list[Series]:
        return []


class _Fences:
    def __init__(self, fail: bool) -> None:
        self.fail = fail
        self.calls: list[tuple[str, Mapping[int, Sequence[int]]]] = []

    async def observe(
        self,
        node: str,
        signals: Mapping[int, HealthSignals],
        xids: Mapping[int, Sequence[int]],
        at: datetime | None = None,
    ) -> list[Any]:
        self.calls.append((node, xids))
        if self.fail:
            raise RuntimeError("database is down")
        return []


async def test_an_xid_whose_write_failed_is_read_again_and_windows_follow_the_readings() -> None:
    reader, fences = _Reader(), _Fences(fail=False)
    monitor = PrometheusHealthMonitor(fences, reader, interval_s=10)  # type: ignore[arg-type]
    reader.xids = [_xid(0, 79, (990, 0))]
    await monitor.check_once(1000.0)
    reader.xids = [_xid(0, 79, (990, 0), (1005, 1))]
    fences.fail = True
    with pytest.raises(RuntimeError):
        await monitor.check_once(1010.0)
    fences.fail = False
    await monitor.check_once(1020.0)
    assert fences.calls[-2:] == [("n1", {0: [79]}), ("n1", {0: [79]})]
    # first: Prometheus's staleness window; then the time since the last recorded reading, plus a margin
    assert reader.queries[0] == "gpu_xid_errors_total[300s]"
    assert reader.queries[-2] == "gpu_xid_errors_total[80s]"
