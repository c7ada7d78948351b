"""The stack definition (`deploy/stack.yaml`): releases, their charts, namespaces, labels and needs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from astrago.deploy.errors import DeployError

RELEASE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class Release(BaseModel):
    """One Helm release: either `chart` (from a Helm repository) or `path` (a chart directory)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(pattern=RELEASE_NAME.pattern, max_length=53)]
    namespace: str
    chart: str | None = None
    version: str | None = None
    repo: str | None = None
    path: str | None = None
    needs: tuple[str, ...] = ()
    labels: dict[str, str] = Field(default_factory=dict)
    values: str | None = None

    @model_validator(mode="after")
    def _one_chart_source(self) -> Release:
        if (self.chart is None) == (self.path is None):
            raise ValueError("give either `chart` (with `version`) or `path`")
        if self.chart is not None and self.version is None:
            raise ValueError("a `chart` needs a `version`")
        return self

    def matches(self, selector: dict[str, str]) -> bool:
        return all(self.labels.get(key) == value for key, value in selector.items())


class Stack(BaseModel):
    model_config = ConfigDict(extra="forbid")

    releases: tuple[Release, ...]
    root: Path = Field(default=Path("."), exclude=True)

    @model_validator(mode="after")
    def _needs_are_known(self) -> Stack:
        names = [release.name for release in self.releases]
        duplicates = {name for name in names if names.count(name) > 1}
        if duplicates:
            raise ValueError(f"duplicate release names: {', '.join(sorted(duplicates))}")
        for release in self.releases:
            unknown = [need for need in release.needs if need not in names]
            if unknown:
                raise ValueError(f"release {release.name} needs unknown release(s) {', '.join(unknown)}")
        return self

    @property
    def path(self) -> Path:
        return self.root / "stack.yaml"

    def release(self, name: str) -> Release:
        for release in self.releases:
            if release.name == name:
                return release
        raise DeployError(f"no release named {name!r}", source=self.path)

    def install_order(self) -> list[Release]:
        """Dependencies first; among releases that are ready at the same time, the order of stack.yaml."""
        done: set[str] = set()
        ordered: list[Release] = []
        remaining = list(self.releases)
        while remaining:
            ready = next((r for r in remaining if all(need in done for need in r.needs)), None)
            if ready is None:
                cycle = ", ".join(release.name for release in remaining)
                raise DeployError(
                    f"releases need each other in a cycle: {cycle}", source=self.path, key="needs"
                )
            ordered.append(ready)
            done.add(ready.name)
            remaining.remove(ready)
        return ordered

    def select(self, selectors: list[str]) -> list[Release]:
        """Releases in install order matching any `key=value[,key=value]` selector (all when none)."""
        ordered = self.install_order()
        if not selectors:
            return ordered
        parsed = [parse_selector(selector) for selector in selectors]
        chosen = [release for release in ordered if any(release.matches(sel) for sel in parsed)]
        if not chosen:
            apps = ", ".join(release.labels.get("app", release.name) for release in ordered)
            raise DeployError(
                f"no release matches {' or '.join(selectors)}",
                source=self.path,
                key="labels",
                hint=f"apps: {apps}",
            )
        return chosen

    def chart_dir(self, release: Release) -> Path | None:
        return (self.root / release.path).resolve() if release.path else None


def parse_selector(text: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise DeployError(f"selector {text!r} is not key=value (for example app=astrago)")
        pairs[key.strip()] = value.strip()
    return pairs


def load_stack(root: Path) -> Stack:
    path = root / "stack.yaml"
    if not path.is_file():
        raise DeployError(
            "stack definition not found", source=path, hint="run from the repository or pass --root"
        )
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise DeployError(f"not valid YAML: {exc}", source=path) from exc
    try:
        stack = Stack.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        key = ".".join(str(part) for part in error["loc"])
        raise DeployError(error["msg"], source=path, key=key) from exc
    return stack.model_copy(update={"root": root})
