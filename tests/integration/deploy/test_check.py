"""`astrago deploy check`: the compatibility matrix of seed 000 and the seeds' default passwords."""

from __future__ import annotations

from pathlib import Path

from tests.integration.deploy.cli import astrago


def check(root: Path, *args: str) -> tuple[int, str]:
    outcome = astrago("deploy", "check", "--root", str(root), *args)
    return outcome.exit_code, outcome.stdout + outcome.message


def test_dev_matrix_is_good_and_default_passwords_only_warn(deploy_root: Path) -> None:
    code, text = check(deploy_root, "-e", "dev")
    assert code == 0, text
    assert "1.28.6 is supported by GPU Operator v24.9.2" in text
    assert "published default password" in text


def test_prod_refuses_empty_and_default_passwords_until_init(deploy_root: Path) -> None:
    code, text = check(deploy_root, "-e", "prod")
    assert code == 1
    assert "is empty" in text
    values = deploy_root / "environments/prod/values.yaml"
    values.write_text(values.read_text() + "keycloak:\n  adminPassword: xiirocks\n")
    code, text = check(deploy_root, "-e", "prod")
    assert code == 1
    assert "published default password" in text
    assert "development environments only" not in text
    values.write_text(values.read_text().replace("keycloak:\n  adminPassword: xiirocks\n", ""))
    init = astrago(
        "deploy", "env", "init", "-e", "prod", "--root", str(deploy_root), "--external-ip", "10.61.3.12",
        "--nfs-server", "10.61.3.2", "--nfs-path", "/nfs-data/astrago", "--registry", "", "--http-server", "",
    )  # fmt: skip
    assert init.exit_code == 0, init.message
    code, text = check(deploy_root, "-e", "prod")
    assert code == 0, text


def test_gpu_operator_25_needs_kubernetes_129(deploy_root: Path) -> None:
    code, text = check(deploy_root, "-e", "dev", "--gpu-operator", "v25.3.0", "--kube-version", "1.28.6")
    assert code == 1
    assert "GPU Operator v25.3.0 needs Kubernetes >=1.29" in text
    code, text = check(deploy_root, "-e", "dev", "--gpu-operator", "v25.3.0", "--kube-version", "v1.29.3",
                       "--driver", "570.124.06")  # fmt: skip
    assert code == 0, text


def test_unsupported_kubernetes_and_driver_branch(deploy_root: Path) -> None:
    code, text = check(deploy_root, "-e", "dev", "--kube-version", "1.25.9", "--driver", "470.223.02")
    assert code == 1
    assert "needs Kubernetes >=1.26,<1.31, not 1.25.9" in text
    assert "branch 470" in text


def test_unknown_operator_version_and_bad_version_text(deploy_root: Path) -> None:
    code, text = check(deploy_root, "-e", "dev", "--gpu-operator", "v23.1.0")
    assert code == 1
    assert "not in the matrix" in text
    code, text = check(deploy_root, "-e", "dev", "--kube-version", "latest")
    assert code == 1
    assert "'latest' is not a version" in text


def test_environment_without_gpu_operator_skips_gpu_checks(deploy_root: Path) -> None:
    code, text = check(deploy_root, "-e", "dev2")
    assert code == 0, text
    assert "GPU checks skipped" in text
