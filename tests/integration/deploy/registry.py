"""A real container registry on loopback: Debian's `docker-registry` (distribution 2.8), filled through the
Registry HTTP API v2 the way `docker push` does it (blob upload, then manifest), without any image layers."""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from astrago.deploy.images import parse_image

REGISTRY_BINARY = "docker-registry"
CONFIG = """\
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: {root}
http:
  addr: 127.0.0.1:{port}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningRegistry:
    host: str

    def push(self, image: str) -> None:
        """Push a manifest (and its config blob) for `image`, whatever registry host it names."""
        ref = parse_image(image)
        config = json.dumps(
            {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
        )
        body = config.encode()
        digest = f"sha256:{hashlib.sha256(body).hexdigest()}"
        base = f"http://{self.host}/v2/{ref.repository}"
        with httpx.Client(timeout=10) as client:
            started = client.post(f"{base}/blobs/uploads/")
            started.raise_for_status()
            location = started.headers["location"]
            separator = "&" if "?" in location else "?"
            upload = f"{location}{separator}digest={digest}"
            if upload.startswith("/"):
                upload = f"http://{self.host}{upload}"
            client.put(
                upload, content=body, headers={"Content-Type": "application/octet-stream"}
            ).raise_for_status()
            manifest = {
                "schemaVersion": 2,
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {
                    "mediaType": "application/vnd.docker.container.image.v1+json",
                    "size": len(body),
                    "digest": digest,
                },
                "layers": [],
            }
            client.put(
                f"{base}/manifests/{ref.tag or 'latest'}",
                content=json.dumps(manifest),
                headers={"Content-Type": manifest["mediaType"]},  # type: ignore[dict-item]
            ).raise_for_status()


@contextmanager
def running_registry(workdir: Path) -> Iterator[RunningRegistry]:
    binary = shutil.which(REGISTRY_BINARY)
    if binary is None:
        raise RuntimeError("docker-registry is not installed (.ci/apt-packages.txt installs it)")
    port = free_port()
    config = workdir / "config.yml"
    config.write_text(CONFIG.format(root=workdir / "storage", port=port))
    process = subprocess.Popen(
        [binary, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    host = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                if httpx.get(f"http://{host}/v2/", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                stderr = process.stderr.read().decode() if process.stderr else ""
                raise RuntimeError(f"docker-registry did not start: {stderr}")
            time.sleep(0.1)
        yield RunningRegistry(host)
    finally:
        process.terminate()
        process.wait(timeout=10)
