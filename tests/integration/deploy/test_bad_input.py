"""Bad input is refused with the file and key named, before anything is applied."""

from __future__ import annotations

from pathlib import Path

from tests.integration.deploy.cli import astrago


def render(root: Path, *args: str, charts: Path | None = None) -> str:
    extra = ["--charts", str(charts)] if charts else []
    outcome = astrago("deploy", "render", "--root", str(root), *extra, *args)
    assert outcome.exit_code == 1
    return outcome.message


def test_missing_environment_names_its_file_and_the_known_ones(deploy_root: Path) -> None:
    message = render(deploy_root, "-e", "qa")
    assert "environments/qa/values.yaml" in message
    assert "environment 'qa' does not exist" in message
    assert "prod" in message


def test_unknown_app_selector_lists_the_apps(deploy_root: Path) -> None:
    message = render(deploy_root, "-e", "dev", "-l", "app=mongodb")
    assert "stack.yaml" in message
    assert "app=mongodb" in message
    assert "keycloak" in message


def test_environment_key_missing_from_common_is_a_typo(deploy_root: Path) -> None:
    values = deploy_root / "environments/dev/values.yaml"
    values.write_text(values.read_text().replace("  core:\n    imageTag:", "  core:\n    imagTag:"))
    message = render(deploy_root, "-e", "dev")
    assert "environments/dev/values.yaml" in message
    assert "astrago.core.imagTag" in message


def test_raw_chart_value_the_chart_does_not_have(
    helm_path: Path, stand_in_charts: Path, deploy_root: Path
) -> None:
    values = deploy_root / "environments/dev/values.yaml"
    values.write_text(values.read_text() + "  mpi-operator:\n    values:\n      image:\n        tga: 0.4.0\n")
    message = render(deploy_root, "-e", "dev", charts=stand_in_charts)
    assert "environments/dev/values.yaml" in message
    assert "releases.mpi-operator.values.image.tga" in message
    assert "no values key image.tga" in message


def test_astrago_chart_value_that_does_not_exist(helm_path: Path, deploy_root: Path) -> None:
    values = deploy_root / "environments/dev/values.yaml"
    values.write_text(values.read_text() + "  astrago:\n    values:\n      core:\n        replica: 3\n")
    message = render(deploy_root, "-e", "dev", "-l", "app=astrago")
    assert "releases.astrago.values.core.replica" in message


def test_chart_missing_from_the_chart_directory(helm_path: Path, deploy_root: Path, tmp_path: Path) -> None:
    message = render(deploy_root, "-e", "dev", "-l", "app=keycloak", charts=tmp_path)
    assert "keycloak 17.3.5" in message
    assert "keycloak.version" in message


def test_release_the_stack_does_not_have(deploy_root: Path) -> None:
    values = deploy_root / "environments/dev/values.yaml"
    values.write_text(values.read_text() + "  mongodb: {enabled: false}\n")
    message = render(deploy_root, "-e", "dev")
    assert "environments/dev/values.yaml: releases.mongodb: no such release in stack.yaml" in message


def test_environment_name_cannot_leave_the_environments_directory(deploy_root: Path) -> None:
    message = render(deploy_root, "-e", "../../etc")
    assert "'../../etc' is not an environment name" in message
