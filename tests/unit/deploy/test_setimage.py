"""`set-image`: the GitOps tag bump edits one line per tag and keeps every comment."""

from __future__ import annotations

from pathlib import Path

import pytest

from astrago.deploy.environments import load_environment
from astrago.deploy.errors import DeployError
from astrago.deploy.setimage import set_image_tags

VALUES = """\
# Staging cluster. Keep this comment.
externalIP: 10.61.3.20   # the VIP

astrago:
  core:
    imageTag: "0.1.0"   # bumped by CI
    replicas: 1
  # batch follows core
  batch:
    imageTag: 0.1.0
"""


@pytest.fixture
def stage(deploy_root: Path) -> Path:
    path = deploy_root / "environments/stage/values.yaml"
    path.write_text(VALUES)
    return path


def test_round_trip_changes_only_the_tag_lines(deploy_root: Path, stage: Path) -> None:
    path, changes = set_image_tags(deploy_root, "stage", ["core=1.0.80", "batch=1.0.81"])
    assert path == stage
    assert [(c.component, c.old, c.new) for c in changes] == [
        ("core", "0.1.0", "1.0.80"),
        ("batch", "0.1.0", "1.0.81"),
    ]
    before, after = VALUES.splitlines(), stage.read_text().splitlines()
    changed = [(old, new) for old, new in zip(before, after, strict=True) if old != new]
    assert [new.split("#")[0].strip() for _, new in changed] == ['imageTag: "1.0.80"', "imageTag: 1.0.81"]
    assert changed[0][1].endswith("# bumped by CI")
    assert load_environment(deploy_root, "stage").get("astrago.core.imageTag") == "1.0.80"


def test_a_key_the_environment_lacks_is_added_below_its_parent(deploy_root: Path, stage: Path) -> None:
    set_image_tags(deploy_root, "stage", ["monitor=1.0.80", "mpi-operator=0.4.0"])
    text = stage.read_text()
    assert "# batch follows core" in text
    assert "  monitor:\n    imageTag: 1.0.80\n" in text
    assert "mpiOperator:\n  imageTag: 0.4.0\n" in text


def test_same_tag_leaves_the_file_untouched(deploy_root: Path, stage: Path) -> None:
    before = stage.stat().st_mtime_ns
    _, changes = set_image_tags(deploy_root, "stage", ["batch=0.1.0"])
    assert changes == []
    assert stage.stat().st_mtime_ns == before


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("frontend=1.0", "unknown component 'frontend'"),
        ("core", "is not COMPONENT=TAG"),
        ("core=bad tag", "not a valid image tag"),
    ],
)
def test_bad_assignments_change_nothing(
    deploy_root: Path, stage: Path, assignment: str, message: str
) -> None:
    with pytest.raises(DeployError, match=message):
        set_image_tags(deploy_root, "stage", ["batch=2.0.0", assignment])
    assert stage.read_text() == VALUES


def test_missing_environment(deploy_root: Path) -> None:
    with pytest.raises(DeployError, match="environment 'qa' does not exist"):
        set_image_tags(deploy_root, "qa", ["core=1.0.0"])
