"""The readiness probe and the metrics scrape stay cheap however many workloads the store holds: they are
served in-process here so that every SQL statement they send can be seen."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from astrago.api.app import Runtime, create_app
from astrago.auth.principal import Principal
from astrago.config import Settings
from astrago.controllers.workloads import WorkloadController
from astrago.services.schemas import WorkloadSubmit
from astrago.store.repositories import UserRepository


@pytest.fixture
async def runtime(database_url: str, tmp_path: Path) -> AsyncIterator[Runtime]:
    settings = Settings(
        data_dir=tmp_path, database_url=database_url, admin_password="x" * 12, simulate_gpus="4xA100-80GB"
    )
    started = await Runtime.start(settings, role="api", announce=lambda _line: None)
    # the API alone runs no controllers: register the simulated node as they would
    await WorkloadController(started.services.ctx, started.backend).sync_inventory()
    try:
        yield started
    finally:
        await started.stop()


class Statements:
    def __init__(self) -> None:
        self.sent: list[str] = []

    def __call__(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        self.sent.append(" ".join(statement.split()))


async def _get(runtime: Runtime, path: str) -> tuple[httpx.Response, list[str]]:
    app = create_app(runtime)
    app.state.ready = True  # the lifespan is not run by ASGITransport
    seen = Statements()
    event.listen(runtime.engine.sync_engine, "before_cursor_execute", seen)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            response = await client.get(path)
    finally:
        event.remove(runtime.engine.sync_engine, "before_cursor_execute", seen)
    return response, seen.sent


async def _submit_some(runtime: Runtime, count: int) -> None:
    async with runtime.services.ctx.read() as session:
        admin = await UserRepository(session).by_username("admin")
    assert admin is not None
    principal = Principal(user_id=admin.id, username="admin", is_admin=True)
    body = WorkloadSubmit(workspace="default", command=["true"], resources={"cpu": "100m", "memory": "64Mi"})
    for _ in range(count):
        await runtime.services.workloads.submit(principal, body)


async def test_readiness_is_one_ping_that_reads_no_table(runtime: Runtime) -> None:
    await _submit_some(runtime, 3)
    response, statements = await _get(runtime, "/readyz")
    assert response.json() == {"status": "ready"}
    assert len(statements) == 1
    assert " FROM " not in statements[0].upper()


async def test_metrics_read_counts_and_columns_not_workload_rows(runtime: Runtime) -> None:
    await _submit_some(runtime, 3)
    response, statements = await _get(runtime, "/metrics")
    assert 'astrago_workloads{state="PENDING",workspace="default"} 3.0' in response.text
    assert not [s for s in statements if "workloads.spec" in s], statements
