"""The chart's Grafana dashboards and recording rules against a real Prometheus (Debian package) that scrapes
a real `astrago server` and a real `astrago gpu-exporter`: every panel's query, and every dashboard
variable's series, returns data.

The server runs simulated GPUs whose health comes from a scripted source (an Xid fences one), with a
workspace, two running workloads, one pending, and a cordoned node and GPU, so that every platform series
the dashboards read exists. The exporter replays the project's recorded `nvidia-smi` capture (a busy GPU 0
with per-process samples, a MIG GPU 1) and is labelled with the server's node name, as the chart's
monitor scrape labels it, so the recording rules can match the platform's GPUs with the exporter's."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.helm import REPO_ROOT
from tests.support.postgres import free_port
from tests.support.server import ADMIN_PASSWORD, ServerProcess, User, wait_for
from tests.unit.gpu.proc_tree import FakeProc

DASHBOARDS = REPO_ROOT / "charts/astrago/dashboards"
CAPTURE = REPO_ROOT / "tests/fixtures/gpu/capture"
JOB = {"command": ["sleep", "300"], "resources": {"gpus": 1, "cpu": "100m", "memory": "64Mi"}}
_LABEL_VALUES = re.compile(r"^label_values\((?P<match>.+),\s*(?P<label>\w+)\)$")


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is missing: .ci/apt-packages.txt installs the prometheus package")
    return path


def _rules(helm: Path, target: Path) -> Path:
    rendered = subprocess.run(
        [
            str(helm),
            "template",
            "astrago",
            str(REPO_ROOT / "charts/astrago"),
            "-s",
            "templates/prometheusrule.yaml",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    target.write_text(yaml.safe_dump({"groups": yaml.safe_load(rendered)["spec"]["groups"]}))
    return target


def _substituted(expr: str) -> str:
    """A panel's query as Grafana sends it with every variable at "All" (regex `.*`)."""
    return re.sub(r"\$\{?(node|workspace|workload)\}?", ".*", expr)


def _dashboard_queries() -> list[tuple[str, str, str]]:
    """(dashboard, panel or variable, query) for every query of every dashboard."""
    found = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                found.append((path.name, panel["title"], target["expr"]))
        for variable in board["templating"]["list"]:
            if variable["type"] == "query":
                found.append((path.name, f"${variable['name']}", variable["query"]["query"]))
    return found


class _Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, promql: str) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=10)
        body = response.json()
        assert body["status"] == "success", f"{promql}: {body}"
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def has_data(self, query: str) -> bool:
        variable = _LABEL_VALUES.match(query)
        if variable:  # Grafana's label_values(series, label): the label's values among those series
            params = {"match[]": _substituted(variable["match"])}
            label = variable["label"]
            response = httpx.get(f"{self.url}/api/v1/label/{label}/values", params=params, timeout=10)
            return bool(response.json()["data"])
        return bool(self.query(_substituted(query)))


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        process.terminate()
    for process in started:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.mark.slow
def test_every_dashboard_query_returns_data_from_a_real_prometheus(
    helm_path: Path, tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    prometheus_bin, promtool = _binary("prometheus"), _binary("promtool")
    rules = _rules(helm_path, tmp_path / "rules.yaml")
    checked = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    script = tmp_path / "gpus.yaml"
    script.write_text("gpus: [{index: 0}, {index: 1}]\n")
    server = ServerProcess(
        data_dir=tmp_path / "data",
        simulate_gpus="2xA100-80GB",
        extra_env={"ASTRAGO_GPU_SOURCE": f"scripted:{script}", "ASTRAGO_GPU_HEALTH_INTERVAL_S": "0.5"},
    )
    server.start()
    try:
        admin = User(server, "admin", tmp_path / "admin-home")
        admin.login(ADMIN_PASSWORD)
        admin.cli("workspace", "create", "ml-a")
        running = [admin.submit("ml-a", **JOB) for _ in range(2)]
        for workload_id in running:
            admin.wait_status(workload_id, "RUNNING", timeout=30)
        admin.submit("ml-a", **JOB)  # waits: both GPUs are held
        (node_info,) = admin.api("GET", "/api/v1/nodes").json()
        node = node_info["name"]
        script.write_text("gpus: [{index: 0}, {index: 1}]\nevents: [{gpu: 1, xid: 79, at: 0}]\n")
        assert admin.api("POST", f"/api/v1/nodes/{node}/cordon", json={"gpu": 0}).status_code == 200
        assert admin.api("POST", f"/api/v1/nodes/{node}/cordon", json={"reason": "x"}).status_code == 200

        exporter_port, prometheus_port = free_port(), free_port()
        proc_root = tmp_path / "proc"  # the capture's processes, alive on this "host"
        for pid in (1001, 1002, 2001):
            FakeProc(proc_root).add(pid, ["python", "train.py"], "0::/user.slice\n")
        processes.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "astrago.cli.main",
                    "gpu-exporter",
                    "--source",
                    f"replay:{CAPTURE}",
                    "--state",
                    "busy",
                    "--proc-root",
                    str(proc_root),
                    "--listen",
                    f"127.0.0.1:{exporter_port}",
                    "--interval",
                    "1",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        config = tmp_path / "prometheus.yml"
        config.write_text(
            yaml.safe_dump(
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "rule_files": [str(rules)],
                    "scrape_configs": [
                        {
                            "job_name": "astrago",
                            "static_configs": [{"targets": [server.url.removeprefix("http://")]}],
                        },
                        {
                            "job_name": "astrago-monitor",
                            "static_configs": [
                                {"targets": [f"127.0.0.1:{exporter_port}"], "labels": {"node": node}}
                            ],
                        },
                    ],
                }
            )
        )
        log = (tmp_path / "prometheus.log").open("wb")
        processes.append(
            subprocess.Popen(
                [
                    prometheus_bin,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{prometheus_port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
        prometheus = _Prometheus(f"http://127.0.0.1:{prometheus_port}")
        wait_for(lambda: _ready(prometheus.url), timeout=30, what="Prometheus ready")
        wait_for(
            lambda: (
                {r["metric"]["job"] for r in prometheus.query("up == 1")} == {"astrago", "astrago-monitor"}
            ),
            timeout=30,
            what="both targets scraped",
        )
        queries = _dashboard_queries()
        assert len(queries) >= 35
        deadline = time.monotonic() + 60
        missing = queries
        while missing and time.monotonic() < deadline:
            missing = [q for q in missing if not prometheus.has_data(q[2])]
            time.sleep(1)
        assert missing == [], "queries without data:\n" + "\n".join(map(str, missing))

        # the recording rules add up: two whole GPUs held by ml-a, GPU 0 busy at 87 % in the capture
        (allocated,) = prometheus.query('astrago:workspace_gpus_allocated:sum{workspace="ml-a"}')
        assert allocated["value"][1] == "2"
        utilization = prometheus.query("astrago:workload_gpu_utilization:avg")
        assert {r["value"][1] for r in utilization} == {"87"}  # GPU 1 is MIG: no device utilization
        (health,) = prometheus.query("astrago_gpu_health")
        assert health["metric"]["cause"] == "XID 79 (GPU fallen off the bus)"
        assert prometheus.query("ALERTS{alertname='AstragoGpuUnhealthy'}")
    finally:
        server.stop()


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/-/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
