"""Environments layer common → values.yaml → secrets.yaml, and refuse keys common does not declare."""

from __future__ import annotations

from pathlib import Path

import pytest

from astrago.deploy.environments import load_environment, unknown_keys
from astrago.deploy.errors import DeployError
from astrago.deploy.images import mirror_reference, parse_image
from astrago.deploy.stack import load_stack
from astrago.deploy.values import render_release_values


def test_layers_override_in_order(deploy_root: Path) -> None:
    (deploy_root / "environments/dev/secrets.yaml").write_text("keycloak:\n  adminPassword: s3cret\n")
    env = load_environment(deploy_root, "dev")
    assert env.get("keycloak.adminPassword") == "s3cret"  # secrets beat values.yaml
    assert env.get("keycloak.servicePort") == 30001  # common fills the rest
    assert env.get("nfs.basePath") == "/nfs-data/astrago-dev"
    assert env.origin("keycloak.adminPassword") == deploy_root / "environments/dev/secrets.yaml"
    assert not env.release_enabled("harbor")


def test_unknown_key_in_secrets_is_named(deploy_root: Path) -> None:
    (deploy_root / "environments/dev/secrets.yaml").write_text("keycloak:\n  adminPasword: s3cret\n")
    with pytest.raises(DeployError) as raised:
        load_environment(deploy_root, "dev")
    assert raised.value.key == "keycloak.adminPasword"
    assert raised.value.source == str(deploy_root / "environments/dev/secrets.yaml")


def test_release_values_are_free_form_but_release_flags_are_not() -> None:
    schema = {"releases": {"harbor": {"enabled": True, "values": {}}}}
    assert list(unknown_keys({"releases": {"harbor": {"values": {"anything": {"x": 1}}}}}, schema)) == []
    assert list(unknown_keys({"releases": {"harbor": {"enable": False}}}, schema)) == [
        "releases.harbor.enable"
    ]


def test_offline_registry_mirrors_every_template_image(deploy_root: Path) -> None:
    values = deploy_root / "environments/astrago/values.yaml"
    values.write_text(values.read_text().replace('registry: ""', 'registry: "10.61.3.8:35000"'))
    stack, env = load_stack(deploy_root), load_environment(deploy_root, "astrago")
    mpi = render_release_values(stack, env, stack.release("mpi-operator")).values
    assert mpi["image"] == {"repository": "10.61.3.8:35000/mpioperator/mpi-operator", "tag": "0.5.0"}
    loki = render_release_values(stack, env, stack.release("loki-stack")).values
    assert loki["promtail"]["image"]["registry"] == "10.61.3.8:35000"


def test_template_using_an_undefined_key_names_the_template(deploy_root: Path) -> None:
    template = deploy_root / "values/mpi-operator.yaml.j2"
    template.write_text(template.read_text().replace("mpiOperator.imageTag", "mpiOperator.tag"))
    stack, env = load_stack(deploy_root), load_environment(deploy_root, "dev")
    with pytest.raises(DeployError) as raised:
        render_release_values(stack, env, stack.release("mpi-operator"))
    assert raised.value.source == str(template)
    assert "has no attribute 'tag'" in raised.value.message


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag"),
    [
        ("nginx", "docker.io", "library/nginx", None),
        ("mpioperator/mpi-operator:0.5.0", "docker.io", "mpioperator/mpi-operator", "0.5.0"),
        (
            "nvcr.io/nvidia/k8s/dcgm-exporter:3.3.8-3.6.0-ubuntu22.04",
            "nvcr.io",
            "nvidia/k8s/dcgm-exporter",
            "3.3.8-3.6.0-ubuntu22.04",
        ),
        ("localhost:5000/a/b@sha256:abc", "localhost:5000", "a/b", None),
    ],
)
def test_parse_image(text: str, registry: str, repository: str, tag: str | None) -> None:
    ref = parse_image(text)
    assert (ref.registry, ref.repository, ref.tag) == (registry, repository, tag)


def test_mirror_reference_keeps_the_path() -> None:
    assert (
        mirror_reference("registry.k8s.io/sig-storage/nfsplugin", "r:5000") == "r:5000/sig-storage/nfsplugin"
    )
    assert mirror_reference("grafana/loki", "r:5000") == "r:5000/grafana/loki"
    assert mirror_reference("docker.io", "r:5000") == "r:5000"
    assert mirror_reference("grafana/loki", "") == "grafana/loki"
