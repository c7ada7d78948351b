"""`astrago deploy set-image -e ENV core=TAG ...`: the GitOps image-tag bump of the seeds' CI, done on the
environment's values.yaml in place, keeping its comments, order and quoting: one changed line per tag."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ruamel.yaml.scalarstring import ScalarString

from astrago.deploy import yamledit
from astrago.deploy.environments import load_environment
from astrago.deploy.errors import DeployError

# Component → the environment key that pins its tag.
COMPONENT_KEYS = {
    "core": "astrago.core.imageTag",
    "batch": "astrago.batch.imageTag",
    "monitor": "astrago.monitor.imageTag",
    "loki": "loki.imageTag",
    "mpi-operator": "mpiOperator.imageTag",
}
# The OCI distribution spec's tag grammar.
TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True)
class TagChange:
    component: str
    key: str
    old: str | None
    new: str


def parse_assignments(assignments: list[str]) -> dict[str, str]:
    parsed: dict[str, str] = {}
    for assignment in assignments:
        component, sep, tag = assignment.partition("=")
        if not sep:
            raise DeployError(f"{assignment!r} is not COMPONENT=TAG (for example core=1.0.80)")
        if component not in COMPONENT_KEYS:
            known = ", ".join(COMPONENT_KEYS)
            raise DeployError(f"unknown component {component!r}", hint=f"components: {known}")
        if not TAG.match(tag):
            raise DeployError(f"{tag!r} is not a valid image tag", key=component)
        parsed[component] = tag
    if not parsed:
        raise DeployError("nothing to set: give COMPONENT=TAG pairs (for example core=1.0.80 batch=1.0.80)")
    return parsed


def set_image_tags(root: Path, environment: str, assignments: list[str]) -> tuple[Path, list[TagChange]]:
    tags = parse_assignments(assignments)
    env = load_environment(root, environment)  # refuses an environment that does not exist
    path = env.values_path
    document = yamledit.load(path)
    changes = []
    for component, tag in tags.items():
        key = COMPONENT_KEYS[component]
        current = yamledit.get(document, key)
        value: str = type(current)(tag) if isinstance(current, ScalarString) else tag
        if yamledit.set_value(document, key, value, source=path):
            changes.append(TagChange(component, key, None if current is None else str(current), tag))
    if changes:
        yamledit.dump(document, path)
        load_environment(root, environment)  # the edited file must still layer cleanly
    return path, changes
