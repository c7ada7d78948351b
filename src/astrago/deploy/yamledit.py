"""In-place YAML edits that keep comments, key order and quoting (ruamel.yaml round-trip), for files
people maintain by hand and review in Git: environment values and the CI's image-tag bumps."""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError

from astrago.deploy.errors import DeployError


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    return yaml


def load(path: Path) -> CommentedMap:
    if not path.exists():
        return CommentedMap()
    try:
        data = _yaml().load(path.read_text())
    except YAMLError as exc:
        raise DeployError(f"not valid YAML: {exc}", source=path) from exc
    if data is None:
        return CommentedMap()
    if not isinstance(data, CommentedMap):
        raise DeployError("must hold a mapping of key: value", source=path)
    return data


def get(document: CommentedMap, dotted: str) -> Any:
    node: Any = document
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def set_value(document: CommentedMap, dotted: str, value: Any, *, source: Path) -> bool:
    """Set `dotted` (creating the mappings on the way); True when the file changes."""
    *parents, leaf = dotted.split(".")
    node: Any = document
    walked = []
    for part in parents:
        walked.append(part)
        if part not in node or node[part] is None:
            node[part] = CommentedMap()
        node = node[part]
        if not isinstance(node, dict):
            raise DeployError(
                "is not a mapping, cannot set a key below it", source=source, key=".".join(walked)
            )
    if leaf in node and node[leaf] == value and type(node[leaf]) is type(value):
        return False
    node[leaf] = value
    return True


def dump(document: CommentedMap, path: Path, *, mode: int | None = None) -> None:
    """Write atomically (temp file + rename), so a failed write never leaves half a file behind."""
    buffer = io.StringIO()
    _yaml().dump(document, buffer)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(buffer.getvalue())
        os.chmod(temp, mode if mode is not None else 0o644)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
