"""Which values key pins an image: so a missing image can be fixed where it is set (seed 003: MPI Operator
0.5.0 vs 0.4.0, Loki 2.9.6 vs 2.9.2 were found by reading values files by hand)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from astrago.deploy.environments import deep_merge
from astrago.deploy.images import parse_image
from astrago.deploy.render import RenderedRelease

TAG_KEYS = ("tag", "version", "imageTag")
REPOSITORY_KEYS = ("registry", "repository", "image", "name")


@dataclass(frozen=True)
class Pin:
    release: str
    key: str  # dotted chart values key
    source: str  # the file that sets it, or "chart defaults"


def pins_for(rendered: RenderedRelease, image: str) -> list[Pin]:
    ref = parse_image(image)
    repository_tail = ref.repository.removeprefix("library/")
    full = deep_merge(rendered.chart_defaults, rendered.values.values)
    pins = []
    for key in _matching_keys(full, ref.tag or "", repository_tail):
        pins.append(Pin(rendered.release.name, key, _source_of(rendered, key)))
    return pins


def _matching_keys(node: Any, tag: str, repository_tail: str, prefix: str = "") -> Iterator[str]:
    if not isinstance(node, Mapping):
        return
    repository_parts = [str(node[k]) for k in REPOSITORY_KEYS if isinstance(node.get(k), str) and node[k]]
    for tag_key in TAG_KEYS:
        value = node.get(tag_key)
        if value is None or str(value).lstrip("v") != tag.lstrip("v") or not tag:
            continue
        composed = "/".join(repository_parts)
        # A tag beside its repository, or an `image: {tag}` block whose repository is set higher up.
        if (composed and composed.endswith(repository_tail)) or (
            not repository_parts and prefix.endswith("image.")
        ):
            yield f"{prefix}{tag_key}"
    for key, value in node.items():
        if isinstance(value, str) and tag and value.endswith(f"{repository_tail}:{tag}"):
            yield f"{prefix}{key}"
        elif isinstance(value, Mapping):
            yield from _matching_keys(value, tag, repository_tail, f"{prefix}{key}.")


def _source_of(rendered: RenderedRelease, dotted: str) -> str:
    for path, part in reversed(rendered.values.sources):
        if _has(part, dotted):
            return _display(path)
    return f"chart default: override with releases.{rendered.release.name}.values.{dotted}"


def _has(values: Mapping[str, Any], dotted: str) -> bool:
    node: Any = values
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return True


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
