"""Environments: `common` values, then the environment's values.yaml, then its git-ignored secrets.yaml.

Each layer overrides the one before key by key. `common/values.yaml` declares every key: a key an
environment sets that `common` does not know is a typo and is refused with the file and key named. Below
`releases.<name>.values` anything goes, because those are raw chart values (checked against the chart)."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from astrago.deploy.errors import DeployError

COMMON = "common"
# The seeds' environments; others can be added as directories next to them.
KNOWN_ENVIRONMENTS = ("prod", "dev", "dev2", "stage", "astrago")
# Keys whose content is free-form (raw chart values), so the key check stops there.
FREE_FORM_SUFFIX = ("values",)


@dataclass(frozen=True)
class Layer:
    path: Path
    data: dict[str, Any]


@dataclass
class Environment:
    name: str
    root: Path
    layers: list[Layer] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def values_path(self) -> Path:
        return environment_dir(self.root, self.name) / "values.yaml"

    @property
    def secrets_path(self) -> Path:
        return environment_dir(self.root, self.name) / "secrets.yaml"

    def get(self, dotted: str) -> Any:
        node: Any = self.values
        for part in dotted.split("."):
            if not isinstance(node, Mapping) or part not in node:
                raise KeyError(dotted)
            node = node[part]
        return node

    def release_enabled(self, name: str) -> bool:
        return bool(self.values.get("releases", {}).get(name, {}).get("enabled", True))

    def release_overrides(self, name: str) -> list[tuple[Path, dict[str, Any]]]:
        """Raw chart values for `name` from each layer that sets some, with the file they come from."""
        found = []
        for layer in self.layers:
            values = (layer.data.get("releases") or {}).get(name, {}) or {}
            if values.get("values"):
                found.append((layer.path, values["values"]))
        return found

    def origin(self, dotted: str) -> Path | None:
        """The last layer that sets `dotted`, i.e. the file to edit to change it."""
        for layer in reversed(self.layers):
            node: Any = layer.data
            for part in dotted.split("."):
                if not isinstance(node, Mapping) or part not in node:
                    break
                node = node[part]
            else:
                return layer.path
        return None


ENVIRONMENT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def environment_dir(root: Path, name: str) -> Path:
    if not ENVIRONMENT_NAME.match(name):
        raise DeployError(f"{name!r} is not an environment name (lowercase letters, digits and dashes)")
    return root / "environments" / name


def list_environments(root: Path) -> list[str]:
    base = root / "environments"
    if not base.is_dir():
        return []
    return sorted(
        p.name for p in base.iterdir() if p.is_dir() and p.name != COMMON and (p / "values.yaml").exists()
    )


def read_mapping(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise DeployError(f"not valid YAML: {exc}", source=path) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise DeployError("must hold a mapping of key: value", source=path)
    return data


def check_release_names(environment: Environment, names: set[str]) -> None:
    """`releases.<name>` in any layer must name a release of stack.yaml."""
    for layer in environment.layers:
        for name in layer.data.get("releases") or {}:
            if name not in names:
                known = ", ".join(sorted(names))
                raise DeployError(
                    "no such release in stack.yaml",
                    source=layer.path,
                    key=f"releases.{name}",
                    hint=f"releases: {known}",
                )


def load_environment(root: Path, name: str) -> Environment:
    env_dir = environment_dir(root, name)
    if name == COMMON or not (env_dir / "values.yaml").is_file():
        known = ", ".join(list_environments(root)) or "none"
        raise DeployError(
            f"environment {name!r} does not exist",
            source=env_dir / "values.yaml",
            hint=f"environments: {known}; create one with `astrago deploy env init -e {name}`",
        )
    common_path = environment_dir(root, COMMON) / "values.yaml"
    if not common_path.is_file():
        raise DeployError("the common values every environment layers on are missing", source=common_path)
    layers = [
        Layer(common_path, read_mapping(common_path)),
        Layer(env_dir / "values.yaml", read_mapping(env_dir / "values.yaml")),
    ]
    secrets = env_dir / "secrets.yaml"
    if secrets.is_file():
        layers.append(Layer(secrets, read_mapping(secrets)))
    schema = layers[0].data
    for layer in layers[1:]:
        for dotted in unknown_keys(layer.data, schema):
            raise DeployError(f"key does not exist in {common_path} (a typo?)", source=layer.path, key=dotted)
    merged: dict[str, Any] = {}
    for layer in layers:
        merged = deep_merge(merged, layer.data)
    return Environment(name=name, root=root, layers=layers, values=merged)


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """A new mapping: `override` wins; nested mappings merge; lists and scalars are replaced whole."""
    result = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = deep_merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def unknown_keys(data: Mapping[str, Any], schema: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    """Dotted keys in `data` that `schema` lacks. An empty mapping in the schema, or a key named in
    FREE_FORM_SUFFIX, accepts anything below it; `releases.<name>` accepts any release name."""
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if prefix == "releases.":
            known: Any = schema.get(key, {"enabled": True, "values": {}})
        elif key not in schema:
            yield dotted
            continue
        else:
            known = schema[key]
        if key in FREE_FORM_SUFFIX and prefix.startswith("releases."):
            continue
        if isinstance(value, Mapping) and isinstance(known, Mapping) and known:
            yield from unknown_keys(value, known, f"{dotted}.")
