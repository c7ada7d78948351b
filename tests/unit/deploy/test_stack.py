"""deploy/stack.yaml: dependency order, selectors, and the seeds' versions."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from astrago.deploy.errors import DeployError
from astrago.deploy.stack import load_stack


def test_install_order_is_the_seeds_order(deploy_root: Path) -> None:
    order = [release.name for release in load_stack(deploy_root).install_order()]
    assert order == [
        "csi-driver-nfs", "gpu-operator", "prometheus", "loki-stack", "keycloak", "mpi-operator", "flux",
        "harbor", "astrago",
    ]  # fmt: skip


def test_every_release_comes_after_what_it_needs(deploy_root: Path) -> None:
    order = load_stack(deploy_root).install_order()
    position = {release.name: index for index, release in enumerate(order)}
    for release in order:
        for need in release.needs:
            assert position[need] < position[release.name]


def test_seed_versions(deploy_root: Path) -> None:
    stack = load_stack(deploy_root)
    versions = {release.name: release.version for release in stack.releases}
    assert versions["gpu-operator"] == "v24.9.2"
    assert versions["prometheus"] == "55.4.0"
    assert versions["keycloak"] == "17.3.5"
    assert versions["harbor"] == "1.15.1"
    assert versions["flux"] == "2.13.0"
    assert versions["csi-driver-nfs"] == "v4.7.0"


def test_selector_by_app_label(deploy_root: Path) -> None:
    stack = load_stack(deploy_root)
    assert [r.name for r in stack.select(["app=keycloak"])] == ["keycloak"]
    assert [r.name for r in stack.select(["tier=monitoring"])] == ["prometheus", "loki-stack"]
    with pytest.raises(DeployError, match="is not key=value"):
        stack.select(["keycloak"])


def _write_stack(root: Path, releases: list[dict[str, object]]) -> None:
    (root / "stack.yaml").write_text(yaml.safe_dump({"releases": releases}))


def test_cycle_and_unknown_need_are_refused(tmp_path: Path) -> None:
    a = {"name": "a", "namespace": "x", "chart": "a", "version": "1", "needs": ["b"]}
    b = {"name": "b", "namespace": "x", "chart": "b", "version": "1", "needs": ["a"]}
    _write_stack(tmp_path, [a, b])
    with pytest.raises(DeployError, match="cycle: a, b"):
        load_stack(tmp_path).install_order()
    _write_stack(tmp_path, [{**a, "needs": ["zeta"]}])
    with pytest.raises(DeployError, match="needs unknown release"):
        load_stack(tmp_path)


def test_release_without_chart_source_names_the_key(tmp_path: Path) -> None:
    _write_stack(tmp_path, [{"name": "a", "namespace": "x"}])
    with pytest.raises(DeployError) as raised:
        load_stack(tmp_path)
    assert raised.value.source == str(tmp_path / "stack.yaml")
    assert raised.value.key == "releases.0"
