"""Container image references: parsing (the Docker reference grammar, simplified) and finding every image a
set of rendered manifests runs, whatever the kind (Deployments, DaemonSets, Jobs, CRs with pod templates)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

DOCKER_HUB = "docker.io"
POD_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")


@dataclass(frozen=True, order=True)
class ImageRef:
    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def reference(self) -> str:
        """The tag or digest to ask a registry for (`latest` when the image names neither)."""
        return self.digest or self.tag or "latest"

    def __str__(self) -> str:
        text = f"{self.registry}/{self.repository}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def is_registry_host(component: str) -> bool:
    return "." in component or ":" in component or component == "localhost"


def parse_image(text: str) -> ImageRef:
    """`nginx` → docker.io/library/nginx; `host:5000/a/b:1.0@sha256:…` keeps every part."""
    rest, _, digest = text.partition("@")
    first, slash, remainder = rest.partition("/")
    if slash and is_registry_host(first):
        registry, path = first, remainder
    else:
        registry, path = DOCKER_HUB, rest
    name, colon, tag = path.rpartition(":")
    if not colon or "/" in tag:
        name, tag = path, ""
    if registry == DOCKER_HUB and "/" not in name:
        name = f"library/{name}"
    return ImageRef(registry=registry, repository=name, tag=tag or None, digest=digest or None)


def mirror_reference(original: str, registry: str) -> str:
    """The same image on another registry: its host is replaced, its path kept (how kubespray-offline and
    `skopeo sync` lay out an offline registry). A bare registry host (`docker.io`) maps to `registry`."""
    if not registry:
        return original
    if "/" not in original and is_registry_host(original):
        return registry
    first, slash, remainder = original.partition("/")
    if slash and is_registry_host(first):
        return f"{registry}/{remainder}"
    return f"{registry}/{original}"


def images_in_documents(documents: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], str]]:
    """(document, image) for every container image in every pod spec found anywhere in each document."""
    for document in documents:
        for image in _images_below(document):
            yield document, image


def _images_below(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in POD_CONTAINER_LISTS and isinstance(value, list):
                for container in value:
                    if isinstance(container, dict) and isinstance(container.get("image"), str):
                        yield container["image"]
            else:
                yield from _images_below(value)
    elif isinstance(node, list):
        for item in node:
            yield from _images_below(item)
