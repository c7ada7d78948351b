"""Fixtures for the deployment tests: the real helm, stand-in charts, a copy of deploy/ and charts/."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.integration.deploy.standins import build_stand_ins
from tests.support.helm import REPO_ROOT, helm_path

__all__ = ["helm_path"]


@pytest.fixture(scope="session")
def stand_in_charts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_stand_ins(tmp_path_factory.mktemp("charts"))


@pytest.fixture
def deploy_root(tmp_path: Path) -> Path:
    """A private copy of the repository's deploy/ and charts/ (tests edit environments and secrets)."""
    shutil.copytree(REPO_ROOT / "deploy", tmp_path / "deploy", ignore=shutil.ignore_patterns("secrets.yaml"))
    shutil.copytree(REPO_ROOT / "charts", tmp_path / "charts")
    return tmp_path / "deploy"
