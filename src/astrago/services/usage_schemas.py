"""Response bodies of the usage ledger's reports."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from astrago.domain.usage import UsageGroupBy


class UsageRow(BaseModel):
    """One group's usage over the window. Hours of a resource are its amount × the time it was held."""

    key: str = Field(description="the group: a workspace, a username, a GPU model (none: CPU only) or a day")
    gpu_hours: float = Field(description="GPU-hours allocated (a half share for an hour: 0.5)")
    gpu_hours_used: float | None = Field(
        description="GPU-hours used: allocated GPU-hours weighted by measured GPU utilisation, over the part "
        "whose utilisation is known (gpu_hours_measured); null when none of it is known (simulated GPUs "
        "without a telemetry source, MIG slices), never 0 for unknown"
    )
    gpu_hours_measured: float = Field(description="the part of gpu_hours whose utilisation is known")
    cpu_core_hours: float
    memory_gib_hours: float
    allocations: int = Field(description="replica runs that contribute")


class UsageReport(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    by: UsageGroupBy
    workspace: str | None = Field(description="the workspace asked for; null: every workspace you may see")
    from_: datetime = Field(alias="from", description="start of the window (inclusive, UTC)")
    to: datetime = Field(description="end of the window (exclusive, UTC); open allocations count up to now")
    time_zone: str = Field(description="days begin at midnight in this zone")
    generated_at: datetime
    rows: list[UsageRow]
    total: UsageRow
