"""The chart's database choices rendered by the real helm 3 and validated against Kubernetes 1.28: the
bundled PostgreSQL or MariaDB, or an external database such as the seeds' embedded MariaDB with its
password taken from that chart's own Secret."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.support.helm import REPO_ROOT


def _render(helm_path: Path, tmp_path: Path, *settings: str) -> list[dict[str, Any]]:
    args = [item for setting in settings for item in ("--set", setting)]
    rendered = subprocess.run(
        [str(helm_path), "template", "astrago", str(REPO_ROOT / "charts/astrago"), *args],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    out = tmp_path / "rendered.yaml"
    out.write_text(rendered)
    validate = Path(sys.executable).with_name("kubernetes-validate")
    checked = subprocess.run(
        [str(validate), "--strict", "--kubernetes-version", "1.28.0", "--quiet", str(out)],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    return [doc for doc in yaml.safe_load_all(rendered) if doc]


def _env(documents: list[dict[str, Any]], deployment: str) -> dict[str, Any]:
    found = next(d for d in documents if d["kind"] == "Deployment" and d["metadata"]["name"] == deployment)
    return {e["name"]: e for e in found["spec"]["template"]["spec"]["containers"][0]["env"]}


def test_bundled_mariadb(helm_path: Path, tmp_path: Path) -> None:
    documents = _render(helm_path, tmp_path, "database.bundled.engine=mariadb")
    (database,) = [d for d in documents if d["kind"] == "StatefulSet"]
    assert database["metadata"]["name"] == "astrago-mariadb"
    container = database["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "docker.io/library/mariadb:10.11"
    secret = next(d for d in documents if d["kind"] == "Secret")["stringData"]
    url = secret["ASTRAGO_DATABASE_URL"]
    assert url.startswith("mysql+asyncmy://astrago:")
    assert url.endswith("@astrago-mariadb:3306/astrago?charset=utf8mb4")
    assert secret["MARIADB_PASSWORD"] in url
    assert "POSTGRES_PASSWORD" not in secret


def test_bundled_postgresql_stays_the_default(helm_path: Path, tmp_path: Path) -> None:
    documents = _render(helm_path, tmp_path)
    (database,) = [d for d in documents if d["kind"] == "StatefulSet"]
    assert database["metadata"]["name"] == "astrago-postgresql"
    secret = next(d for d in documents if d["kind"] == "Secret")["stringData"]
    assert secret["ASTRAGO_DATABASE_URL"].startswith("postgresql+asyncpg://astrago:")


def test_the_seeds_embedded_mariadb_with_its_own_secret(helm_path: Path, tmp_path: Path) -> None:
    url = "mysql+asyncmy://astrago@astrago-mariadb:3306/astrago?charset=utf8mb4"
    documents = _render(
        helm_path,
        tmp_path,
        "database.external.url=" + url,
        "database.external.passwordSecret.name=astrago-mariadb",
        "database.external.passwordSecret.key=mariadb-password",
    )
    assert not [d for d in documents if d["kind"] == "StatefulSet"]
    secret = next(d for d in documents if d["kind"] == "Secret")["stringData"]
    assert secret["ASTRAGO_DATABASE_URL"] == url
    for deployment in ("astrago-core", "astrago-batch"):
        password = _env(documents, deployment)["ASTRAGO_DATABASE_PASSWORD"]
        assert password["valueFrom"]["secretKeyRef"] == {"name": "astrago-mariadb", "key": "mariadb-password"}
