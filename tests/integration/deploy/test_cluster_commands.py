"""sync, status, diff and destroy through a fake `helm` on PATH that records its calls (no Kubernetes API
server can run here; docs/deploy.md describes the same commands against a real cluster)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.integration.deploy.cli import astrago
from tests.integration.deploy.fake_helm import install_fake_helm, recorded_calls, set_deployed_manifest

DEV_ORDER = [
    "csi-driver-nfs", "gpu-operator", "prometheus", "loki-stack", "keycloak", "mpi-operator", "flux",
    "astrago",
]  # fmt: skip


@pytest.fixture
def fake_state(helm_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    state = tmp_path / "helm-state"
    install_fake_helm(tmp_path / "bin", helm_path)
    monkeypatch.delenv("ASTRAGO_HELM", raising=False)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_HELM_STATE", str(state))
    return state


def deploy(command: str, root: Path, charts: Path, *args: str) -> tuple[int, str]:
    extra = ["--charts", str(charts)] if command in ("sync", "diff") else []
    outcome = astrago("deploy", command, "-e", "dev", "--root", str(root), *extra, *args)
    return outcome.exit_code, outcome.stdout + outcome.stderr + outcome.message


def upgrades(state: Path) -> list[list[str]]:
    return [call for call in recorded_calls(state) if call[0] == "upgrade"]


def test_sync_renders_everything_then_installs_in_dependency_order(
    fake_state: Path, stand_in_charts: Path, deploy_root: Path
) -> None:
    code, text = deploy("sync", deploy_root, stand_in_charts)
    assert code == 0, text
    calls = recorded_calls(fake_state)
    first_upgrade = next(i for i, call in enumerate(calls) if call[0] == "upgrade")
    assert all(call[0] == "upgrade" for call in calls[first_upgrade:])  # nothing applied before all rendered
    installed = upgrades(fake_state)
    assert [call[2] for call in installed] == DEV_ORDER
    keycloak = installed[DEV_ORDER.index("keycloak")]
    assert keycloak[:2] == ["upgrade", "--install"]
    assert keycloak[keycloak.index("--namespace") + 1] == "astrago"
    assert {"--wait", "--create-namespace"} <= set(keycloak)
    assert keycloak[3].endswith("keycloak")  # the chart from --charts


def test_selector_syncs_one_release(fake_state: Path, stand_in_charts: Path, deploy_root: Path) -> None:
    code, text = deploy("sync", deploy_root, stand_in_charts, "-l", "app=keycloak")
    assert code == 0, text
    assert [call[2] for call in upgrades(fake_state)] == ["keycloak"]


def test_bad_value_applies_nothing(fake_state: Path, stand_in_charts: Path, deploy_root: Path) -> None:
    values = deploy_root / "environments/dev/values.yaml"
    values.write_text(values.read_text() + "  astrago:\n    values:\n      core:\n        replica: 3\n")
    code, text = deploy("sync", deploy_root, stand_in_charts)
    assert code == 1
    assert "releases.astrago.values.core.replica" in text
    assert upgrades(fake_state) == []


def test_failed_release_stops_the_sync(
    fake_state: Path, stand_in_charts: Path, deploy_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_HELM_FAIL", "gpu-operator")
    code, text = deploy("sync", deploy_root, stand_in_charts, "-l", "tier=infra")
    assert code == 1
    assert "helm upgrade failed: Error: UPGRADE FAILED" in text
    assert [call[2] for call in upgrades(fake_state)] == [
        "csi-driver-nfs",
        "gpu-operator",
    ]  # not mpi-operator


def test_status_diff_and_destroy(fake_state: Path, stand_in_charts: Path, deploy_root: Path) -> None:
    code, text = deploy("status", deploy_root, stand_in_charts)
    assert code == 1
    assert "not installed" in text
    code, text = deploy("sync", deploy_root, stand_in_charts, "-l", "tier=monitoring")
    assert code == 0, text
    code, text = deploy("status", deploy_root, stand_in_charts, "-l", "tier=monitoring")
    assert code == 0, text
    assert text.count("deployed") == 2

    set_deployed_manifest(fake_state, "prometheus", "apiVersion: v1\nkind: ConfigMap\n")
    code, text = deploy("diff", deploy_root, stand_in_charts, "-l", "app=prometheus")
    assert code == 1
    assert "-kind: ConfigMap" in text
    assert "+kind: Deployment" in text

    code, text = deploy("destroy", deploy_root, stand_in_charts, "--yes")
    assert code == 0, text
    uninstalled = [call[1] for call in recorded_calls(fake_state) if call[0] == "uninstall"]
    assert uninstalled == ["loki-stack", "prometheus"]  # dependents first, only what is installed


def test_sync_refuses_an_environment_that_fails_its_checks(
    fake_state: Path, stand_in_charts: Path, deploy_root: Path
) -> None:
    outcome = astrago(
        "deploy", "sync", "-e", "prod", "--root", str(deploy_root), "--charts", str(stand_in_charts)
    )
    assert outcome.exit_code == 1
    assert "environment prod fails its checks, nothing was installed" in outcome.message
    assert "keycloak.adminPassword is empty" in outcome.message
    assert recorded_calls(fake_state) == []
