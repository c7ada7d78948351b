"""The usage ledger's report: GPU-hours allocated and used, CPU-core-hours and memory over a window."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from astrago.api.deps import PrincipalDep, ServicesDep
from astrago.domain.usage import UsageGroupBy
from astrago.services.usage import UsageQuery, usage_csv
from astrago.services.usage_schemas import UsageReport

router = APIRouter(prefix="/api/v1/usage", tags=["usage"])

Bound = datetime | date  # a datetime first: "2026-12-01T00:00" is an instant, "2026-12-01" a whole day


class UsageFormat(StrEnum):
    JSON = "json"
    CSV = "csv"


@router.get(
    "",
    response_model=UsageReport,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
async def usage_report(
    services: ServicesDep,
    principal: PrincipalDep,
    workspace: Annotated[
        str | None, Query(max_length=64, description="one workspace; default: all you may see")
    ] = None,
    from_: Annotated[
        Bound | None,
        Query(alias="from", description="a day (from its midnight) or an instant; default: 30 days ago"),
    ] = None,
    to: Annotated[
        Bound | None,
        Query(description="a day (to its end, inclusive) or an instant (exclusive); default: now"),
    ] = None,
    by: Annotated[UsageGroupBy, Query(description="what the rows are")] = UsageGroupBy.WORKSPACE,
    tz: Annotated[
        str | None, Query(max_length=64, description="IANA zone of the days; default: the server's setting")
    ] = None,
    format: Annotated[UsageFormat, Query(description="json, or csv for spreadsheets")] = UsageFormat.JSON,
) -> UsageReport | Response:
    """Usage per workspace, user, GPU model or day; allocations still running count up to now. Members see
    their workspaces, admins all. Days are split exactly at midnight of the report's time zone."""
    report = await services.usage.report(principal, UsageQuery(workspace, from_, to, by, tz))
    if format is UsageFormat.CSV:
        filename = f"usage-by-{by.value}.csv"
        return Response(
            usage_csv(report),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )
    return report
