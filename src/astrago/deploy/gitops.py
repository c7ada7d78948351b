"""`astrago deploy gitops -e ENV`: Flux manifests that keep a cluster on the environment as committed.

Written to one directory: `sources.yaml` (the deployment Git repository and the Helm repositories),
`releases.yaml` (one HelmRelease per enabled release, `dependsOn` following `needs`), `kustomization.yaml`
listing both, and `secret-values.yaml`: a Secret with every password the values hold, which the
HelmReleases read through `valuesFrom`/`targetPath`. That file is the one NOT to commit (apply it with
kubectl, or seal it). After a `set-image`, re-run `gitops` and commit: Flux rolls the change out."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from astrago.deploy.compat import matrix
from astrago.deploy.environments import Environment
from astrago.deploy.errors import DeployError
from astrago.deploy.stack import Release, Stack
from astrago.deploy.values import render_release_values

FLUX_NAMESPACE = "flux-system"
SOURCE_API = "source.toolkit.fluxcd.io/v1"
HELM_API = "helm.toolkit.fluxcd.io/v2"


def flux_manifests(stack: Stack, environment: Environment) -> dict[str, list[dict[str, Any]]]:
    """Manifests by file name. Charts of this repository are read from the tracked Git repository, whose
    root is taken to be the parent of the `deploy/` directory."""
    git_url = str(environment.get("flux.gitUrl") or "")
    if not git_url:
        raise DeployError(
            "is empty: the Git repository Flux should track",
            source=environment.values_path,
            key="flux.gitUrl",
        )
    git_name = f"astrago-{environment.name}"
    secret_name = f"astrago-{environment.name}-secret-values"
    releases = [r for r in stack.install_order() if environment.release_enabled(r.name)]
    enabled = {r.name for r in releases}
    offline_repo = _offline_chart_repo(environment)
    sources: list[dict[str, Any]] = [
        {
            "apiVersion": SOURCE_API,
            "kind": "GitRepository",
            "metadata": {"name": git_name, "namespace": FLUX_NAMESPACE},
            "spec": {
                "url": git_url,
                "ref": {"branch": str(environment.get("flux.branch"))},
                "interval": "1m",
            },
        }
    ]
    repositories: dict[str, str] = {}
    helm_releases = []
    secret_data: dict[str, str] = {}
    secrets = _secret_values(environment)
    for release in releases:
        values = render_release_values(stack, environment, release).values
        inline, moved = split_secrets(values, secrets)
        value_refs = []
        for path, value in moved.items():
            key = f"{release.name}.{path}"
            secret_data[key] = value
            value_refs.append({"kind": "Secret", "name": secret_name, "valuesKey": key, "targetPath": path})
        spec: dict[str, Any] = {
            "interval": "10m",
            "releaseName": release.name,
            "targetNamespace": release.namespace,
            "install": {"createNamespace": True, "remediation": {"retries": 3}},
            "upgrade": {"remediation": {"retries": 3}},
            "chart": {"spec": _chart_spec(release, stack, git_name, offline_repo, repositories)},
            "values": inline,
        }
        needs = [{"name": need} for need in release.needs if need in enabled]
        if needs:
            spec["dependsOn"] = needs
        if value_refs:
            spec["valuesFrom"] = value_refs
        helm_releases.append(
            {
                "apiVersion": HELM_API,
                "kind": "HelmRelease",
                "metadata": {
                    "name": release.name,
                    "namespace": FLUX_NAMESPACE,
                    "labels": dict(release.labels),
                },
                "spec": spec,
            }
        )
    for name, url in repositories.items():
        sources.append(
            {
                "apiVersion": SOURCE_API,
                "kind": "HelmRepository",
                "metadata": {"name": name, "namespace": FLUX_NAMESPACE},
                "spec": {"url": url, "interval": "1h"},
            }
        )
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": secret_name, "namespace": FLUX_NAMESPACE},
        "type": "Opaque",
        "stringData": secret_data,
    }
    return {"sources.yaml": sources, "releases.yaml": helm_releases, "secret-values.yaml": [secret]}


def _offline_chart_repo(environment: Environment) -> str | None:
    offline = environment.values.get("offline", {})
    if offline.get("chartRepo"):
        return str(offline["chartRepo"])
    if offline.get("httpServer"):
        return f"{str(offline['httpServer']).rstrip('/')}/charts"
    return None


def _chart_spec(
    release: Release, stack: Stack, git_name: str, offline_repo: str | None, repositories: dict[str, str]
) -> dict[str, Any]:
    if release.path:
        chart_dir = (stack.root / release.path).resolve()
        return {
            "chart": f"./{chart_dir.relative_to(stack.root.resolve().parent).as_posix()}",
            "sourceRef": {"kind": "GitRepository", "name": git_name},
            "reconcileStrategy": "Revision",
        }
    url = offline_repo or release.repo
    if not url:
        raise DeployError(
            f"chart {release.chart} has no repository Flux can read",
            source=stack.path,
            key=f"{release.name}.repo",
            hint="set offline.httpServer or offline.chartRepo to a chart repository holding it",
        )
    name = repositories.get(url) or _repository_name(url, repositories)
    repositories[name] = url
    return {
        "chart": release.chart,
        "version": release.version,
        "sourceRef": {"kind": "HelmRepository", "name": name},
    }


def _repository_name(url: str, taken: Mapping[str, str]) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", url.split("://", 1)[-1].lower()).strip("-")[:50].strip("-")
    name, counter = base, 2
    while name in taken and taken[name] != url:
        name, counter = f"{base}-{counter}", counter + 1
    return name


def _secret_values(environment: Environment) -> set[str]:
    found = set()
    for key in matrix()["secretKeys"]:
        value = environment.get(key)
        if value:
            found.add(str(value))
    return found


def split_secrets(values: Mapping[str, Any], secrets: set[str]) -> tuple[dict[str, Any], dict[str, str]]:
    """(values without the leaves that hold a secret, {dotted path: leaf}) for Flux `valuesFrom`."""
    moved = dict(_secret_leaves(values, secrets))
    inline = _without(values, set(moved))
    return inline, moved


def _secret_leaves(node: Mapping[str, Any], secrets: set[str], prefix: str = "") -> Iterator[tuple[str, str]]:
    for key, value in node.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from _secret_leaves(value, secrets, f"{path}.")
        elif isinstance(value, str) and any(secret in value for secret in secrets):
            yield path, value


def _without(node: Mapping[str, Any], paths: set[str], prefix: str = "") -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in node.items():
        path = f"{prefix}{key}"
        if path in paths:
            continue
        result[key] = _without(value, paths, f"{path}.") if isinstance(value, Mapping) else value
    return result


def write_flux(out: Path, manifests: dict[str, list[dict[str, Any]]]) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, documents in manifests.items():
        path = out / name
        path.write_text(yaml.safe_dump_all(documents, sort_keys=False))
        if name == "secret-values.yaml":
            path.chmod(0o600)
        written.append(path)
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": ["sources.yaml", "releases.yaml"],
    }
    (out / "kustomization.yaml").write_text(yaml.safe_dump(kustomization, sort_keys=False))
    written.append(out / "kustomization.yaml")
    return written
