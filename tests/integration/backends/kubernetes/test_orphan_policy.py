"""`ASTRAGO_ORPHAN_POLICY=delete` deletes orphans, end to end: the setting read from the environment, the
workload controller's first reconcile, the Kubernetes backend, and the API server (the kmock emulator
in fake_cluster.py, as no real Kubernetes API server runs here)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from astrago.backends.kubernetes import KubernetesBackend
from astrago.controllers.workloads import WorkloadController
from astrago.domain.enums import WorkloadKind
from astrago.services.context import ServiceContext
from astrago.store.db import create_engine, create_session_factory
from astrago.store.migrate import upgrade_to_head
from tests.integration.backends.kubernetes.fake_cluster import FakeCluster
from tests.unit.backends.kubernetes.factories import launch_spec

DEPLOYMENTS = "/apis/apps/v1/namespaces/astrago/deployments"


@pytest.mark.parametrize(("policy", "left"), [("delete", 0), ("report", 1)])
async def test_orphan_policy_from_the_environment_reaches_the_backend(
    cluster: FakeCluster,
    make_settings: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    policy: str,
    left: int,
) -> None:
    monkeypatch.setenv("ASTRAGO_ORPHAN_POLICY", policy)
    settings = make_settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'astrago.db'}")
    engine = create_engine(settings.effective_database_url)
    await upgrade_to_head(engine)
    backend = KubernetesBackend(settings)
    await backend.open()
    try:
        # a workload created just before a crash that lost its database row
        await backend.start(launch_spec(WorkloadKind.SERVICE, workload_id="lost-in-crash"))
        controller = WorkloadController(ServiceContext(create_session_factory(engine), settings), backend)
        await controller.full_reconcile()
        assert len(await cluster.kubelet.list(DEPLOYMENTS)) == left
    finally:
        await backend.close()
        await engine.dispose()
