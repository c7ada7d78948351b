"""A real Prometheus for a test: started on a free port with the scrape jobs given, stopped after."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.support.postgres import free_port


@contextmanager
def running_prometheus(root: Path, scrape_configs: str) -> Iterator[str]:
    """Its URL; `scrape_configs` is the YAML list under `scrape_configs:` (scraped every second)."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus not installed (apt-get install prometheus; .ci/apt-packages.txt has it)")
    port = free_port()
    config = root / "prometheus.yml"
    config.write_text("global: {scrape_interval: 1s}\nscrape_configs:\n" + scrape_configs)
    log = (root / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={root / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)
        log.close()


def wait_for_series(url: str, promql: str, count: int | None = None, log: Path | None = None) -> None:
    """Until the query returns a series (exactly `count` of them, if given), or 30 s."""
    deadline = time.monotonic() + 30
    while True:
        try:
            result = httpx.get(f"{url}/api/v1/query", params={"query": promql}).json()["data"]["result"]
            if result and (count is None or len(result) == count):
                return
        except (httpx.HTTPError, KeyError, ValueError):
            pass
        tail = log.read_text()[-2000:] if log and log.exists() else ""
        assert time.monotonic() < deadline, f"no {promql} in Prometheus {tail}"
        time.sleep(0.3)
