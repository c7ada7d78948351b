"""`astrago top` and the GPU use line of `astrago describe`, rendered from typed answers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from rich.console import Console

from astrago.cli import monitor
from astrago.monitor.schemas import (
    SIMULATED_NO_SOURCE,
    SampleSource,
    TopListing,
    TopRow,
    WorkloadGpuUsage,
    WorkloadUtilisation,
)

NOW = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)


def _row(workload_id: str, util: float | None, reason: str | None = None) -> TopRow:
    return TopRow(
        workload_id=workload_id, name=f"name-{workload_id}", workspace="ml-a", kind="job", status="RUNNING",
        gpus=2, sampled_gpus=2 if util is not None else 0, gpu_util_percent=util,
        memory_used_bytes=3 * 2**30 if util is not None else None, at=NOW if util is not None else None,
        source=SampleSource.NVML if util is not None else None, reason=reason,
    )  # fmt: skip


def _usage(summary: WorkloadUtilisation, reason: str | None) -> WorkloadGpuUsage:
    return WorkloadGpuUsage(
        workload_id="w1", since=NOW, until=NOW, step_s=10, attributable=summary.attributable,
        sources=summary.sources, reason=reason, summary=summary, series=[],
    )  # fmt: skip


def _summary(util: float | None, samples: int = 3) -> WorkloadUtilisation:
    return WorkloadUtilisation(
        workload_id="w1", since=NOW, until=NOW, samples=samples, attributable=util is not None,
        gpu_util_mean_percent=util, gpu_util_peak_percent=None if util is None else util + 10,
        memory_mean_bytes=2**30, memory_peak_bytes=2 * 2**30, gpu_seconds_sampled=7200.0,
        gpu_seconds_used=3600.0, sources=[SampleSource.SCRIPTED] if samples else [],
    )  # fmt: skip


def test_the_live_table_shows_use_and_says_why_it_is_unknown() -> None:
    listing = TopListing(
        at=NOW, interval_s=10, rows=[_row("w1", 45.4), _row("w2", None, SIMULATED_NO_SOURCE)]
    )
    console = Console(record=True, width=200)
    console.print(monitor._live_table(listing))
    text = console.export_text()
    assert "45%" in text
    assert "3.0 GiB" in text
    assert SIMULATED_NO_SOURCE in text
    assert "samples every 10 s" in text
    empty = Console(record=True, width=200)
    empty.print(monitor._live_table(TopListing(at=NOW, interval_s=10, rows=[])))
    assert "(no live workloads)" in empty.export_text()


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        (None, "GPU use:   - (not started)"),
        (
            _usage(_summary(40.0), None),
            "GPU use:   mean 40%, peak 50% per GPU; memory mean 1.0 GiB, peak 2.0 GiB per GPU "
            "(1.00 GPU-hours used of 2.00 sampled; source: scripted)",
        ),
        (
            _usage(_summary(None), "not attributable: MIG"),
            "GPU use:   unknown — not attributable: MIG; memory",
        ),
        (
            _usage(_summary(None, samples=0), SIMULATED_NO_SOURCE),
            f"GPU use:   unknown — {SIMULATED_NO_SOURCE}",
        ),
    ],
)
def test_describe_says_mean_and_peak_or_why_not(
    usage: WorkloadGpuUsage | None, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    monitor.print_gpu_use(usage)
    assert " ".join(expected.split()) in " ".join(capsys.readouterr().out.split())
