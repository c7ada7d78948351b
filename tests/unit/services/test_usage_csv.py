"""The usage report as CSV: a header naming the grouping, one line per group, unknown left empty."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from astrago.domain.usage import UsageGroupBy
from astrago.services.usage import usage_csv
from astrago.services.usage_schemas import UsageReport, UsageRow

AT = datetime(2026, 12, 1, tzinfo=UTC)


def row(key: str, used: float | None) -> UsageRow:
    return UsageRow(
        key=key,
        gpu_hours=2.0,
        gpu_hours_used=used,
        gpu_hours_measured=0.0 if used is None else 2.0,
        cpu_core_hours=8.0,
        memory_gib_hours=32.0,
        allocations=1,
    )


def test_csv_has_a_header_and_leaves_unknown_used_hours_empty() -> None:
    report = UsageReport(
        by=UsageGroupBy.USER,
        workspace=None,
        from_=AT,
        to=AT,
        time_zone="UTC",
        generated_at=AT,
        rows=[row("kim", 0.5), row("lee, the second", None)],
        total=row("total", 0.5),
    )
    rows = list(csv.reader(io.StringIO(usage_csv(report))))
    assert rows == [
        [
            "user",
            "gpu_hours",
            "gpu_hours_used",
            "gpu_hours_measured",
            "cpu_core_hours",
            "memory_gib_hours",
            "allocations",
        ],
        ["kim", "2.0", "0.5", "2.0", "8.0", "32.0", "1"],
        ["lee, the second", "2.0", "", "0.0", "8.0", "32.0", "1"],
    ]


def test_the_json_report_names_its_window_from_and_to() -> None:
    report = UsageReport(
        by=UsageGroupBy.DAY,
        workspace="ml-a",
        from_=AT,
        to=AT,
        time_zone="UTC",
        generated_at=AT,
        rows=[],
        total=row("total", None),
    )
    dumped = report.model_dump(mode="json", by_alias=True)
    assert dumped["from"] == "2026-12-01T00:00:00Z"
    assert dumped["total"]["gpu_hours_used"] is None
    assert UsageReport.model_validate(dumped) == report
