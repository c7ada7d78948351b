"""`gitops`: Flux sources and HelmReleases for an environment, with its passwords kept out of them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from astrago.deploy.environments import load_environment
from astrago.deploy.errors import DeployError
from astrago.deploy.gitops import flux_manifests, split_secrets, write_flux
from astrago.deploy.stack import load_stack


def enable_flux(root: Path, *, mpi_operator: bool = False) -> None:
    values = root / "environments/dev/values.yaml"
    text = values.read_text() + "flux:\n  gitUrl: https://git.example.com/astrago-deployment.git\n"
    if not mpi_operator:  # its chart has no online repository (seed: it lives in the deployment repo)
        switched_off = "  harbor: {enabled: false}\n  mpi-operator: {enabled: false}\n"
        text = text.replace("  harbor: {enabled: false}\n", switched_off)
    values.write_text(text)


def test_flux_manifests_follow_needs_and_keep_secrets_out(deploy_root: Path, tmp_path: Path) -> None:
    enable_flux(deploy_root)
    manifests = flux_manifests(load_stack(deploy_root), load_environment(deploy_root, "dev"))
    written = write_flux(tmp_path, manifests)
    assert {path.name for path in written} == {
        "sources.yaml", "releases.yaml", "secret-values.yaml", "kustomization.yaml",
    }  # fmt: skip
    releases = {
        doc["metadata"]["name"]: doc for doc in yaml.safe_load_all((tmp_path / "releases.yaml").read_text())
    }
    assert "harbor" not in releases  # switched off in dev
    astrago = releases["astrago"]["spec"]
    assert astrago["chart"]["spec"]["chart"] == "./charts/astrago"
    assert astrago["chart"]["spec"]["sourceRef"] == {"kind": "GitRepository", "name": "astrago-dev"}
    assert {need["name"] for need in astrago["dependsOn"]} == {
        "csi-driver-nfs", "gpu-operator", "prometheus", "loki-stack", "keycloak", "flux",
    }  # fmt: skip
    assert astrago["values"]["core"]["image"]["tag"] == "0.1.0"
    committed = (tmp_path / "releases.yaml").read_text() + (tmp_path / "sources.yaml").read_text()
    for password in ("xiirocks", "astragosecret", "Harbor12345"):
        assert password not in committed
    refs = {ref["targetPath"]: ref for ref in releases["keycloak"]["spec"]["valuesFrom"]}
    assert refs["auth.adminPassword"]["name"] == "astrago-dev-secret-values"
    secret = yaml.safe_load((tmp_path / "secret-values.yaml").read_text())
    assert secret["stringData"][refs["auth.adminPassword"]["valuesKey"]] == "xiirocks"
    assert (tmp_path / "secret-values.yaml").stat().st_mode & 0o077 == 0
    sources = list(yaml.safe_load_all((tmp_path / "sources.yaml").read_text()))
    git = sources[0]
    assert git["kind"] == "GitRepository"
    assert git["spec"]["url"] == "https://git.example.com/astrago-deployment.git"
    repositories = {doc["spec"]["url"] for doc in sources[1:]}
    assert "https://charts.bitnami.com/bitnami" in repositories


def test_offline_environment_reads_charts_from_the_offline_repository(deploy_root: Path) -> None:
    enable_flux(deploy_root, mpi_operator=True)
    values = deploy_root / "environments/dev/values.yaml"
    values.write_text(values.read_text() + "offline:\n  httpServer: http://10.61.3.8\n")
    manifests = flux_manifests(load_stack(deploy_root), load_environment(deploy_root, "dev"))
    repositories = [doc for doc in manifests["sources.yaml"] if doc["kind"] == "HelmRepository"]
    assert [doc["spec"]["url"] for doc in repositories] == ["http://10.61.3.8/charts"]


def test_without_a_git_url_the_key_is_named(deploy_root: Path) -> None:
    with pytest.raises(DeployError) as raised:
        flux_manifests(load_stack(deploy_root), load_environment(deploy_root, "dev"))
    assert raised.value.key == "flux.gitUrl"


def test_chart_without_any_repository_is_named(deploy_root: Path) -> None:
    enable_flux(deploy_root, mpi_operator=True)
    with pytest.raises(DeployError) as raised:
        flux_manifests(load_stack(deploy_root), load_environment(deploy_root, "dev"))
    assert raised.value.key == "mpi-operator.repo"


def test_split_secrets_moves_leaves_that_embed_a_secret() -> None:
    inline, moved = split_secrets({"a": {"b": "x-s3cret-y", "c": 1}, "d": "plain"}, {"s3cret"})
    assert inline == {"a": {"c": 1}, "d": "plain"}
    assert moved == {"a.b": "x-s3cret-y"}
