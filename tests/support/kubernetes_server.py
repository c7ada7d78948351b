"""`astrago server --backend kubernetes` as a subprocess against an emulated cluster's kubeconfig (the
kmock emulator of tests/integration/backends/kubernetes/fake_cluster.py)."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.postgres import free_port
from tests.support.server import ADMIN_PASSWORD, ASTRAGO


@dataclass
class KubernetesServer:
    url: str
    process: asyncio.subprocess.Process
    log_path: Path


@asynccontextmanager
async def kubernetes_server(
    kubeconfig: Path,
    namespace: str,
    data_dir: Path,
    *,
    role: str | None = None,
    database_url: str | None = None,
    extra_env: dict[str, str] | None = None,
) -> AsyncIterator[KubernetesServer]:
    """Started with a fresh data dir, the test admin password and a short scheduling interval; ready when
    `/readyz` answers 200; terminated on exit."""
    port = free_port()
    env = {
        **os.environ,
        "ASTRAGO_DATA_DIR": str(data_dir),
        "ASTRAGO_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "ASTRAGO_SCHEDULING_INTERVAL_S": "0.3",
        **(extra_env or {}),
    }
    if database_url is not None:
        env["ASTRAGO_DATABASE_URL"] = database_url
    await asyncio.to_thread(data_dir.mkdir, parents=True, exist_ok=True)
    args = [*ASTRAGO, "server", "--port", str(port), "--backend", "kubernetes"]
    args += ["--kubeconfig", str(kubeconfig), "--namespace", namespace]
    if role is not None:
        args += ["--role", role]
    log_path = data_dir / "server.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(*args, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(600):
                assert process.returncode is None, log_path.read_text()
                try:
                    if (await client.get(f"{url}/readyz", timeout=1)).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
            else:
                raise AssertionError(f"the server was not ready in 60 s:\n{log_path.read_text()}")
        yield KubernetesServer(url, process, log_path)
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()
