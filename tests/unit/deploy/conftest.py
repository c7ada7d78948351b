"""A private copy of deploy/ for tests that edit environments."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support.helm import REPO_ROOT


@pytest.fixture
def deploy_root(tmp_path: Path) -> Path:
    shutil.copytree(REPO_ROOT / "deploy", tmp_path / "deploy", ignore=shutil.ignore_patterns("secrets.yaml"))
    shutil.copytree(REPO_ROOT / "charts", tmp_path / "charts")
    return tmp_path / "deploy"
