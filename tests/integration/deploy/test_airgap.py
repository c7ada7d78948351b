"""Air gap: `bundle` lists what an environment needs, `preflight` finds what the offline registry lacks
(a real registry on loopback) and names the values key to fix, `set-image` fixes it."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from tests.integration.deploy.cli import Outcome, astrago
from tests.integration.deploy.registry import RunningRegistry, running_registry


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    with running_registry(tmp_path_factory.mktemp("registry")) as running:
        yield running


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def chart_repository(helm_path: Path, stand_in_charts: Path, tmp_path: Path) -> Iterator[str]:
    """An offline chart repository (index.yaml + archives over HTTP) holding every stand-in but Harbor."""
    served = tmp_path / "chart-repo" / "charts"
    served.mkdir(parents=True)
    for chart in sorted(stand_in_charts.iterdir()):
        if chart.name != "harbor":
            subprocess.run(
                [str(helm_path), "package", str(chart), "-d", str(served)], check=True, capture_output=True
            )
    subprocess.run([str(helm_path), "repo", "index", str(served)], check=True, capture_output=True)
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(served.parent)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/charts"
    finally:
        server.shutdown()
        server.server_close()


def offline_environment(root: Path, registry: RunningRegistry) -> None:
    outcome = astrago(
        "deploy", "env", "init", "-e", "astrago", "--root", str(root), "--external-ip", "10.61.3.12",
        "--nfs-server", "10.61.3.2", "--nfs-path", "/nfs-data/astrago", "--registry", registry.host,
        "--http-server", "",
    )  # fmt: skip
    assert outcome.exit_code == 0, outcome.message


def preflight(root: Path, charts: Path, registry: str, *extra: str) -> Outcome:
    return astrago("deploy", "preflight", "-e", "astrago", "--root", str(root), "--charts", str(charts),
                   "--registry", registry, *extra)  # fmt: skip


def test_bundle_preflight_and_the_seed_failure_modes(
    helm_path: Path, stand_in_charts: Path, deploy_root: Path, tmp_path: Path, registry: RunningRegistry
) -> None:
    offline_environment(deploy_root, registry)
    out = tmp_path / "bundle"
    outcome = astrago(
        "deploy", "bundle", "-e", "astrago", "--root", str(deploy_root), "--charts", str(stand_in_charts),
        "--out", str(out),
    )  # fmt: skip
    assert outcome.exit_code == 0, outcome.message
    manifest = yaml.safe_load((out / "bundle.yaml").read_text())
    images = (out / "images.txt").read_text().split()
    assert images == [entry["image"] for entry in manifest["images"]]
    mirror = registry.host
    assert f"{mirror}/mpioperator/mpi-operator:0.5.0" in images
    assert f"{mirror}/grafana/loki:2.9.6" in images
    assert f"{mirror}/nvidia/gpu-operator:v24.9.2" in images
    assert f"{mirror}/xiilab/astrago:0.1.0" in images
    assert f"{mirror}/library/postgres:16.4-alpine" in images
    assert sorted(path.name for path in (out / "charts").iterdir()) == sorted(
        f"{chart['chart']}-{chart['version']}.tgz" for chart in manifest["charts"]
    )
    # The offline registry of seed 003: MPI Operator 0.4.0, not 0.5.0; Loki/Promtail 2.9.2, not 2.9.6.
    stale = {
        f"{mirror}/mpioperator/mpi-operator:0.5.0": f"{mirror}/mpioperator/mpi-operator:0.4.0",
        f"{mirror}/grafana/loki:2.9.6": f"{mirror}/grafana/loki:2.9.2",
        f"{mirror}/grafana/promtail:2.9.6": f"{mirror}/grafana/promtail:2.9.2",
    }
    for image in images:
        registry.push(stale.get(image, image))

    # Charts from the bundle itself, as an air-gapped site would use them.
    outcome = preflight(deploy_root, out / "charts", mirror)
    assert outcome.exit_code == 1
    assert "3 image(s), 0 chart(s) missing" in outcome.message
    report = outcome.stdout
    assert f"{len(images) - 3}/{len(images)} images present" in report
    assert "mpi-operator: image.tag" in report
    assert "loki-stack: loki.image.tag" in report
    assert "loki-stack: promtail.image.tag" in report

    fixed = astrago(
        "deploy", "set-image", "-e", "astrago", "--root", str(deploy_root), "mpi-operator=0.4.0", "loki=2.9.2"
    )
    assert fixed.exit_code == 0, fixed.message
    outcome = preflight(deploy_root, out / "charts", mirror)
    assert outcome.exit_code == 0, outcome.stdout + outcome.message
    assert f"{len(images)}/{len(images)} images present" in outcome.stdout


def test_missing_chart_in_the_offline_chart_repository(
    helm_path: Path,
    stand_in_charts: Path,
    deploy_root: Path,
    registry: RunningRegistry,
    chart_repository: str,
) -> None:
    offline_environment(deploy_root, registry)
    outcome = preflight(
        deploy_root, stand_in_charts, registry.host, "--chart-repo", chart_repository, "-l", "tier=registry"
    )
    assert outcome.exit_code == 1
    assert "missing chart harbor 1.15.1 (release harbor)" in outcome.stdout
    outcome = preflight(
        deploy_root, stand_in_charts, registry.host, "--chart-repo", chart_repository, "-l", "app=keycloak"
    )
    assert "1/1 charts present" in outcome.stdout


def test_unreachable_registry_is_named_and_nothing_is_rendered(deploy_root: Path, tmp_path: Path) -> None:
    outcome = preflight(deploy_root, tmp_path, "127.0.0.1:9")
    assert outcome.exit_code == 1
    assert outcome.message.startswith("127.0.0.1:9: registry is unreachable")
    assert "--registry HOST:PORT" in outcome.message
