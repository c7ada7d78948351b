"""The Role and ClusterRole in docs/kubernetes.md grant everything the backend checks for at open."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from astrago.backends.kubernetes.preflight import MPI_PERMISSIONS, REQUIRED_PERMISSIONS, Permission

DOC = Path(__file__).resolve().parents[4] / "docs" / "kubernetes.md"


def documented_manifests() -> list[dict[str, Any]]:
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.S)
    return [doc for block in blocks for doc in yaml.safe_load_all(block)]


def granted(rules: list[dict[str, Any]], permission: Permission) -> bool:
    return any(
        permission.group in rule["apiGroups"]
        and permission.resource in rule["resources"]
        and permission.verb in rule["verbs"]
        for rule in rules
    )


def test_documented_roles_cover_every_checked_permission() -> None:
    roles = {
        doc["kind"]: doc["rules"] for doc in documented_manifests() if doc["kind"] in ("Role", "ClusterRole")
    }
    for permission in (*REQUIRED_PERMISSIONS, *MPI_PERMISSIONS):
        rules = roles["Role"] if permission.namespaced else roles["ClusterRole"]
        assert granted(rules, permission), f"docs/kubernetes.md does not grant {permission}"


@pytest.mark.parametrize("version", ["1.28.0", "1.30.0"])
def test_documented_manifests_are_valid(version: str) -> None:
    for manifest in documented_manifests():
        kubernetes_validate.validate(manifest, version, strict=True)
