from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from astrago.backends.local import LocalBackend
from astrago.config import Settings
from tests.integration.backends.local.support import GUARD_S, TERMINAL, Outcomes
from tests.unit.backends.local.factories import local_settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return local_settings(tmp_path / "data", grace_s=5.0)


@pytest.fixture
async def backend(settings: Settings) -> AsyncIterator[LocalBackend]:
    opened = LocalBackend(settings)
    await opened.open()
    yield opened
    await stop_everything(opened)
    await opened.close()


@pytest.fixture
def outcomes(backend: LocalBackend) -> Outcomes:
    return Outcomes(backend)


async def stop_everything(backend: LocalBackend) -> None:
    """Leave no process behind, whatever the test did."""
    with contextlib.suppress(Exception):
        pending = [o for o in await backend.observe() if o.state not in TERMINAL]
        watcher = Outcomes(backend)
        for observation in pending:
            await backend.stop(observation.workload_id, 0, "test teardown")
        async with asyncio.timeout(GUARD_S):
            for observation in pending:
                await watcher.final(observation.workload_id, observation.replica_index)
