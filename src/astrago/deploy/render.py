"""Rendering an environment: for each selected release, its values (checked against the chart) and the
manifests the real `helm template` produces from them. Everything else (diff, sync, bundle, preflight)
starts from here, so nothing is applied before every release has rendered cleanly."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from astrago.deploy.environments import Environment, check_release_names, load_environment
from astrago.deploy.errors import DeployError
from astrago.deploy.helm import ChartRef, ChartSources, Helm, resolve_chart
from astrago.deploy.images import images_in_documents
from astrago.deploy.stack import Release, Stack, load_stack
from astrago.deploy.values import ReleaseValues, check_against_chart, render_release_values

# helm template is a subprocess: a few at a time hide its start-up cost without flooding small machines.
RENDER_WORKERS = 4


@dataclass
class RenderedRelease:
    release: Release
    chart: ChartRef
    values: ReleaseValues
    chart_defaults: dict[str, Any]
    manifest: str
    documents: list[dict[str, Any]] = field(default_factory=list)

    @property
    def images(self) -> list[str]:
        return sorted({image for _, image in images_in_documents(self.documents)})


@dataclass
class Target:
    """An environment of a stack, with the helm binary and chart sources to use."""

    stack: Stack
    environment: Environment
    helm: Helm
    sources: ChartSources

    @property
    def kube_version(self) -> str:
        return str(self.environment.values.get("kubernetes", {}).get("version", "v1.28.6"))

    def releases(self, selectors: list[str]) -> list[Release]:
        """Selected releases, in install order, that this environment enables."""
        return [r for r in self.stack.select(selectors) if self.environment.release_enabled(r.name)]

    def render(
        self, selectors: list[str], on_done: Callable[[Release], None] | None = None
    ) -> list[RenderedRelease]:
        """Render the selected releases, several helm processes at a time; results in install order.
        The first failure in install order is raised, after every render has finished."""
        releases = self.releases(selectors)
        with ThreadPoolExecutor(max_workers=RENDER_WORKERS) as pool:
            futures = [pool.submit(self._render_reporting, release, on_done) for release in releases]
        return [future.result() for future in futures]

    def _render_reporting(
        self, release: Release, on_done: Callable[[Release], None] | None
    ) -> RenderedRelease:
        rendered = self.render_one(release)
        if on_done is not None:
            on_done(release)
        return rendered

    def render_one(self, release: Release) -> RenderedRelease:
        values = render_release_values(self.stack, self.environment, release)
        chart = resolve_chart(self.stack, release, self.sources)
        try:
            defaults = self.helm.show_values(chart)
            check_against_chart(values, defaults)
            manifest = self.helm.template(release, chart, values.values, self.kube_version)
        except DeployError as exc:
            if exc.source:
                raise
            raise DeployError(f"release {release.name}: {exc.message}", source=chart.origin) from exc
        documents = [doc for doc in yaml.safe_load_all(manifest) if isinstance(doc, dict)]
        return RenderedRelease(release, chart, values, defaults, manifest, documents)


def open_target(
    root: Path,
    environment: str,
    *,
    charts_dir: Path | None = None,
    helm: Helm | None = None,
) -> Target:
    stack = load_stack(root)
    env = load_environment(root, environment)
    check_release_names(env, {release.name for release in stack.releases})
    if charts_dir is not None and not charts_dir.is_dir():
        raise DeployError("chart directory does not exist", source=charts_dir)
    offline = env.values.get("offline", {})
    chart_repo = offline.get("chartRepo") or (
        f"{str(offline['httpServer']).rstrip('/')}/charts" if offline.get("httpServer") else None
    )
    sources = ChartSources(charts_dir=charts_dir, chart_repo=chart_repo or None)
    return Target(stack=stack, environment=env, helm=helm or Helm(), sources=sources)


def write_manifests(rendered: list[RenderedRelease], out: Path) -> list[Path]:
    """One file per release, prefixed with its install position so `ls` shows the order."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for position, item in enumerate(rendered, start=1):
        path = out / f"{position:02d}-{item.release.name}.yaml"
        path.write_text(item.manifest)
        written.append(path)
    return written
