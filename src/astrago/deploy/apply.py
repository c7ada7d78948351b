"""Applying an environment to the cluster with helm: sync (upgrade --install --wait, dependencies first),
diff (rendered vs. what the cluster runs), status and destroy (dependents first).

Every release is rendered before the first one is applied, so a bad value anywhere applies nothing."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from astrago.deploy.render import RenderedRelease, Target
from astrago.deploy.stack import Release

Step = Callable[[str, Release], None]


@dataclass(frozen=True)
class ReleaseStatus:
    release: Release
    installed: bool
    status: str
    revision: int | None
    chart: str | None
    updated: str | None


def sync(
    target: Target, rendered: list[RenderedRelease], on_step: Step | None = None, timeout: str = "10m"
) -> None:
    for item in rendered:
        if on_step:
            on_step("installing", item.release)
        target.helm.upgrade_install(item.release, item.chart, item.values.values, timeout=timeout)
        if on_step:
            on_step("installed", item.release)


def diff(target: Target, rendered: list[RenderedRelease]) -> dict[str, str]:
    """Unified diff per release of what helm would apply against the release's deployed manifest."""
    changes = {}
    for item in rendered:
        deployed = target.helm.deployed_manifest(item.release) or ""
        lines = difflib.unified_diff(
            deployed.splitlines(keepends=True),
            without_crds_directory(item.manifest).splitlines(keepends=True),
            fromfile=f"{item.release.name} (cluster)" if deployed else f"{item.release.name} (not installed)",
            tofile=f"{item.release.name} ({target.environment.name})",
        )
        text = "".join(lines)
        if text:
            changes[item.release.name] = text
    return changes


def without_crds_directory(manifest: str) -> str:
    """The manifest minus the CRDs of charts' `crds/` directories: helm installs those once and leaves them
    out of the release's stored manifest, so comparing them would always show a difference."""
    documents = re.split(r"^---\n", manifest, flags=re.MULTILINE)
    kept = [doc for doc in documents if not re.search(r"^# Source: [^\n]*/crds/", doc, flags=re.MULTILINE)]
    return "---\n".join(kept)


def status(target: Target, releases: list[Release]) -> list[ReleaseStatus]:
    result = []
    for release in releases:
        data: dict[str, Any] | None = target.helm.status(release)
        if data is None:
            result.append(ReleaseStatus(release, False, "not installed", None, None, None))
            continue
        info = data.get("info") or {}
        chart_meta = ((data.get("chart") or {}).get("metadata")) or {}
        chart = f"{chart_meta.get('name')}-{chart_meta.get('version')}" if chart_meta else None
        result.append(
            ReleaseStatus(
                release,
                True,
                str(info.get("status", "unknown")),
                data.get("version"),
                chart,
                info.get("last_deployed"),
            )
        )
    return result


def destroy(
    target: Target, releases: list[Release], on_step: Step | None = None, timeout: str = "10m"
) -> list[str]:
    """Uninstall in reverse install order; releases that are not installed are skipped."""
    removed = []
    for release in reversed(releases):
        if target.helm.status(release) is None:
            continue
        if on_step:
            on_step("removing", release)
        target.helm.uninstall(release, timeout=timeout)
        removed.append(release.name)
    return removed
