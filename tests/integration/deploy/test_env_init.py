"""`env init`: the seeds' installer questions, as prompts or flags, and generated secrets."""

from __future__ import annotations

import stat
from pathlib import Path

import yaml

from tests.integration.deploy.cli import astrago


def test_prompts_write_values_and_secrets_keeping_comments(deploy_root: Path) -> None:
    answers = "10.61.3.12\n10.61.3.2\n/nfs-data/astrago\n10.61.3.8:35000\nhttp://10.61.3.8/\n"
    outcome = astrago("deploy", "env", "init", "-e", "astrago", "--root", str(deploy_root), input=answers)
    assert outcome.exit_code == 0, outcome.message
    assert "Enter the offline registry" in outcome.stdout
    values_path = deploy_root / "environments/astrago/values.yaml"
    text = values_path.read_text()
    assert text.startswith("# The customer-site environment")
    values = yaml.safe_load(text)
    assert values["externalIP"] == "10.61.3.12"
    assert values["offline"] == {"registry": "10.61.3.8:35000", "httpServer": "http://10.61.3.8"}
    secrets_path = deploy_root / "environments/astrago/secrets.yaml"
    assert stat.S_IMODE(secrets_path.stat().st_mode) == 0o600
    secrets = yaml.safe_load(secrets_path.read_text())
    assert len(secrets["keycloak"]["adminPassword"]) >= 24
    assert secrets["keycloak"]["adminPassword"] != secrets["harbor"]["adminPassword"]

    again = astrago(
        "deploy", "env", "init", "-e", "astrago", "--root", str(deploy_root), "--no-input",
        "--external-ip", "10.61.3.13", "--nfs-server", "10.61.3.2", "--nfs-path", "/nfs-data/astrago",
        "--registry", "10.61.3.8:35000", "--http-server", "http://10.61.3.8",
    )  # fmt: skip
    assert again.exit_code == 0, again.message
    assert yaml.safe_load(secrets_path.read_text()) == secrets  # kept: rotating is explicit
    assert yaml.safe_load(values_path.read_text())["externalIP"] == "10.61.3.13"


def test_new_environment_is_created(deploy_root: Path) -> None:
    outcome = astrago(
        "deploy",
        "env",
        "init",
        "-e",
        "customer-b",
        "--root",
        str(deploy_root),
        "--no-input",
        "--external-ip",
        "astrago.example.com",
        "--nfs-server",
        "10.0.0.5",
        "--nfs-path",
        "/export",
    )  # fmt: skip  (online: no offline registry or HTTP server to give)
    assert outcome.exit_code == 0, outcome.message
    values = yaml.safe_load((deploy_root / "environments/customer-b/values.yaml").read_text())
    assert values["offline"] == {"registry": "", "httpServer": ""}
    checked = astrago("deploy", "check", "-e", "customer-b", "--root", str(deploy_root))
    assert checked.exit_code == 0, checked.stdout


def test_bad_answers_and_missing_flags(deploy_root: Path) -> None:
    bad = astrago(
        "deploy", "env", "init", "-e", "stage", "--root", str(deploy_root), "--no-input",
        "--external-ip", "10.61.3.12", "--nfs-server", "10.61.3.2", "--nfs-path", "nfs-data",
        "--registry", "", "--http-server", "",
    )  # fmt: skip
    assert bad.exit_code == 1
    assert bad.message.startswith("nfs.basePath: 'nfs-data' is not an absolute path")
    assert not (deploy_root / "environments/stage/secrets.yaml").exists()
    missing = astrago("deploy", "env", "init", "-e", "stage", "--root", str(deploy_root), "--no-input")
    assert missing.exit_code == 2
    assert "externalIP is not given" in missing.message
