"""Real Prometheus and node-exporter (Debian packages) scrape the exporter and its textfile.

The exporter runs as `astrago gpu-exporter` in a subprocess, replaying the project's own `-q -x` fixture over
a fake /proc tree that puts one process in a pod (there is no GPU here). A one-shot `--once --textfile-dir`
run writes the textfile that node-exporter's textfile collector serves. Prometheus scrapes both every second;
the series are checked through its HTTP API, and `promtool check metrics` must accept both outputs."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from astrago.cli.main import app
from tests.unit.gpu.proc_tree import FakeProc, systemd_containerd

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "gpu" / "two-gpus-mig.xml"
BINARIES = ("prometheus", "prometheus-node-exporter", "promtool")
UID = "12345678-1234-1234-1234-123456789abc"
CID = "ab" * 32


def _binaries() -> dict[str, str]:
    found = {name: shutil.which(name) for name in BINARIES}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"{', '.join(missing)} missing in CI; .ci/apt-packages.txt installs them")
        pytest.skip(
            f"{', '.join(missing)} not installed (apt-get install prometheus prometheus-node-exporter)"
        )
    return {name: path for name, path in found.items() if path is not None}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as response:
        return bytes(response.read())


def _wait_for(url: str, deadline_s: float = 20.0) -> bytes:
    end = time.monotonic() + deadline_s
    while True:
        try:
            return _get(url)
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.2)


class Processes:
    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.running: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        log = (self.log_dir / f"{name}.log").open("wb")
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        self.running.append(process)
        return process

    def stop_all(self) -> None:
        for process in self.running:
            process.terminate()
        for process in self.running:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    started = Processes(tmp_path)
    yield started
    started.stop_all()


def _query(prometheus: str, promql: str) -> list[dict[str, Any]]:
    body = _get(f"{prometheus}/api/v1/query?{urllib.parse.urlencode({'query': promql})}")
    result: list[dict[str, Any]] = json.loads(body)["data"]["result"]
    return result


@pytest.mark.slow
def test_prometheus_scrapes_exporter_and_textfile(tmp_path: Path, processes: Processes) -> None:
    binaries = _binaries()
    proc = FakeProc(tmp_path / "proc")
    proc.add(1001, ["python", "train.py", "--lr", "0.1"], systemd_containerd(UID, CID))
    textfiles = tmp_path / "textfile"
    textfiles.mkdir()
    source = f"replay:{FIXTURE}"

    once = CliRunner().invoke(
        app,
        [
            "gpu-exporter",
            "--source",
            source,
            "--proc-root",
            str(tmp_path / "proc"),
            "--once",
            "--textfile-dir",
            str(textfiles),
        ],
    )
    assert once.exit_code == 0, once.output
    textfile = (textfiles / "astrago_gpu.prom").read_bytes()

    exporter_port, node_port, prometheus_port = _free_port(), _free_port(), _free_port()
    processes.start(
        "exporter",
        [
            sys.executable,
            "-m",
            "astrago.cli.main",
            "gpu-exporter",
            "--source",
            source,
            "--proc-root",
            str(tmp_path / "proc"),
            "--listen",
            f"127.0.0.1:{exporter_port}",
            "--interval",
            "1",
        ],
    )
    processes.start(
        "node-exporter",
        [
            binaries["prometheus-node-exporter"],
            f"--web.listen-address=127.0.0.1:{node_port}",
            "--collector.disable-defaults",
            "--collector.textfile",
            f"--collector.textfile.directory={textfiles}",
        ],
    )
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - job_name: astrago-gpu\n    static_configs: [{{targets: ['127.0.0.1:{exporter_port}']}}]\n"
        f"  - job_name: node\n    static_configs: [{{targets: ['127.0.0.1:{node_port}']}}]\n"
    )
    processes.start(
        "prometheus",
        [
            binaries["prometheus"],
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prometheus_port}",
        ],
    )
    prometheus = f"http://127.0.0.1:{prometheus_port}"

    exposition = _wait_for(f"http://127.0.0.1:{exporter_port}/metrics")
    for name, text in (("exporter", exposition), ("textfile", textfile)):
        check = subprocess.run(
            [binaries["promtool"], "check", "metrics"], input=text, capture_output=True, timeout=30
        )
        assert check.returncode == 0, f"promtool on the {name} output: {check.stdout!r} {check.stderr!r}"

    _wait_for(f"{prometheus}/-/ready")
    deadline = time.monotonic() + 20
    while {r["metric"]["job"] for r in _query(prometheus, "up == 1")} != {"astrago-gpu", "node"}:
        assert time.monotonic() < deadline, (tmp_path / "prometheus.log").read_text()[-2000:]
        time.sleep(0.5)

    for job in ("astrago-gpu", "node"):
        info = _query(prometheus, f'gpu_process_info{{job="{job}"}}')
        by_pid = {r["metric"]["pid"]: r["metric"] for r in info}
        assert set(by_pid) == {"1001", "1002", "2001"}, job
        assert by_pid["1001"]["pod_uid"] == UID
        assert by_pid["1001"]["container_id"] == CID
        assert by_pid["1001"]["command"] == "python train.py --lr 0.1"  # from /proc, not the driver
        assert by_pid["1002"]["type"] == "C+G"
        assert by_pid["2001"]["gpu_instance_id"] == "1"
        sessions = _query(prometheus, f'gpu_sessions{{job="{job}"}}')
        assert sorted(
            (r["metric"]["gpu"], r["metric"].get("gpu_instance_id", ""), r["value"][1]) for r in sessions
        ) == [
            ("0", "", "2"),
            ("1", "1", "1"),
            ("1", "5", "0"),
        ]
        assert _query(prometheus, f'gpu_total_sessions{{job="{job}"}}')[0]["value"][1] == "3"
        memory = _query(prometheus, f'gpu_process_memory_used_bytes{{job="{job}", pid="2001"}}')
        assert memory[0]["value"][1] == str(4900 * 1024 * 1024)
    # recorded XML has no per-process sampling: utilization is absent, not 0
    assert _query(prometheus, "gpu_process_utilization") == []
    assert _query(prometheus, 'gpu_exporter_collections_total{job="astrago-gpu"} >= 1')
