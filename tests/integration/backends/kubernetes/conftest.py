"""Fixtures: a fake cluster on loopback (fake_cluster.py says what is emulated and why), an open backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from astrago.backends.kubernetes import KubernetesBackend
from astrago.config import Settings
from tests.integration.backends.kubernetes.fake_cluster import NAMESPACE, FakeCluster, running_cluster


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[FakeCluster]:
    async with running_cluster(tmp_path) as fake:
        yield fake


@pytest.fixture
def make_settings(cluster: FakeCluster, tmp_path: Path) -> Any:
    def make(**overrides: Any) -> Settings:
        fields: dict[str, Any] = {
            "kubeconfig": str(cluster.kubeconfig),
            "namespace": NAMESPACE,
            "data_dir": tmp_path / "data",
        }
        fields.update(overrides)
        return Settings(**fields)

    return make


@pytest.fixture
async def backend(make_settings: Any) -> AsyncIterator[KubernetesBackend]:
    opened = KubernetesBackend(make_settings())
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()
