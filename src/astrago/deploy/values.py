"""Values of one release for one environment: the release's Jinja2 template rendered with the layered
environment values, then the environment's raw chart values on top, then checked against the chart."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import yaml

from astrago.deploy.environments import Environment, deep_merge
from astrago.deploy.errors import DeployError
from astrago.deploy.images import mirror_reference
from astrago.deploy.stack import Release, Stack


@dataclass(frozen=True)
class ReleaseValues:
    release: Release
    values: dict[str, Any]
    # Which file each part came from, for messages: (file, values) in the order they were merged.
    sources: tuple[tuple[Path, dict[str, Any]], ...]


def template_environment(stack: Stack, environment: Environment) -> jinja2.Environment:
    loader = jinja2.FileSystemLoader(str(stack.root))
    jinja = jinja2.Environment(loader=loader, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    registry = str(environment.values.get("offline", {}).get("registry") or "")
    jinja.globals["mirror"] = lambda reference: mirror_reference(str(reference), registry)
    jinja.globals["environment_name"] = environment.name
    jinja.filters["tojson"] = _strict_tojson
    return jinja


def _strict_tojson(value: Any) -> str:
    """JSON (a valid YAML scalar) of a value; an undefined key fails like any other use of it would."""
    if isinstance(value, jinja2.Undefined):
        value._fail_with_undefined_error()
    return json.dumps(value)


def render_release_values(stack: Stack, environment: Environment, release: Release) -> ReleaseValues:
    sources: list[tuple[Path, dict[str, Any]]] = []
    if release.values:
        template_path = stack.root / release.values
        rendered = _render_template(stack, environment, release, template_path)
        sources.append((template_path, rendered))
    sources.extend(environment.release_overrides(release.name))
    merged: dict[str, Any] = {}
    for _, part in sources:
        merged = deep_merge(merged, part)
    return ReleaseValues(release=release, values=merged, sources=tuple(sources))


def _render_template(stack: Stack, environment: Environment, release: Release, path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise DeployError("values template not found", source=stack.path, key=f"{release.name}.values")
    jinja = template_environment(stack, environment)
    try:
        text = jinja.get_template(str(release.values)).render(**environment.values)
    except jinja2.UndefinedError as exc:
        raise DeployError(
            f"{exc.message}: the template uses a key the environment does not define",
            source=path,
            hint=f"define it in {environment.root / 'environments/common/values.yaml'}",
        ) from exc
    except jinja2.TemplateError as exc:
        raise DeployError(f"template error: {exc}", source=path) from exc
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise DeployError(f"the rendered values are not valid YAML: {exc}", source=path) from exc
    if not isinstance(data, dict):
        raise DeployError("the rendered values must be a mapping", source=path)
    return data


def check_against_chart(values: ReleaseValues, chart_defaults: Mapping[str, Any]) -> None:
    """Refuse a values key the chart does not declare, naming the file that sets it.

    A chart declares a key by having it in its default values. An empty mapping or a null default is an
    open slot (`podAnnotations: {}`, `nodeSelector: {}`), so anything below it is accepted."""
    for source, part in values.sources:
        for dotted in undeclared_keys(part, chart_defaults):
            raise DeployError(
                f"chart {values.release.chart or values.release.path} has no values key {dotted}",
                source=source,
                key=dotted if source.suffix == ".j2" else f"releases.{values.release.name}.values.{dotted}",
            )


def undeclared_keys(
    values: Mapping[str, Any], defaults: Mapping[str, Any], prefix: str = ""
) -> Iterator[str]:
    for key, value in values.items():
        dotted = f"{prefix}{key}"
        if not prefix and key == "global":
            continue  # helm passes `global` to every chart and subchart, declared or not
        if key not in defaults:
            yield dotted
            continue
        known = defaults[key]
        if isinstance(value, Mapping) and isinstance(known, Mapping) and known:
            yield from undeclared_keys(value, known, f"{dotted}.")
