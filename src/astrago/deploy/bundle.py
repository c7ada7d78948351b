"""`astrago deploy bundle`: everything an air-gapped install of one environment needs, found by rendering
the environment (never a hand-kept list): every image in the manifests and every chart, with a manifest.

Layout of the output directory:
    bundle.yaml   environment, charts (name, version, file) and images (with the releases and values keys)
    images.txt    one image per line, for `skopeo sync`/kubespray-offline to copy into the offline registry
    charts/       <chart>-<version>.tgz of every release, the layout `--charts DIR` reads back"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from astrago.deploy.helm import Helm
from astrago.deploy.pins import Pin, pins_for
from astrago.deploy.render import RenderedRelease


@dataclass
class BundledImage:
    image: str
    releases: list[str] = field(default_factory=list)
    pins: list[Pin] = field(default_factory=list)


def collect_images(rendered: list[RenderedRelease]) -> list[BundledImage]:
    images: dict[str, BundledImage] = {}
    for item in rendered:
        for image in item.images:
            entry = images.setdefault(image, BundledImage(image))
            entry.releases.append(item.release.name)
            entry.pins.extend(pins_for(item, image))
    return [images[name] for name in sorted(images)]


def bundle_manifest(environment: str, kube_version: str, rendered: list[RenderedRelease]) -> dict[str, Any]:
    return {
        "environment": environment,
        "kubernetes": kube_version,
        "charts": [
            {
                "release": item.release.name,
                "namespace": item.release.namespace,
                "chart": item.chart.name,
                "version": item.chart.version,
                "from": item.chart.origin,
                "file": f"charts/{item.chart.name}-{item.chart.version}.tgz",
            }
            for item in rendered
        ],
        "images": [
            {
                "image": image.image,
                "releases": image.releases,
                "valuesKeys": [f"{pin.release}: {pin.key} ({pin.source})" for pin in image.pins],
            }
            for image in collect_images(rendered)
        ],
    }


def write_bundle(out: Path, manifest: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "bundle.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    (out / "images.txt").write_text("".join(f"{image['image']}\n" for image in manifest["images"]))


def place_chart_archive(archive: Path, charts_out: Path, name: str, version: str | None) -> Path:
    """Store a packaged chart under the bundle's `<chart>-<version>.tgz` name."""
    charts_out.mkdir(parents=True, exist_ok=True)
    target = charts_out / f"{name}-{version}.tgz"
    if archive.resolve() != target.resolve():
        shutil.copyfile(archive, target)
    return target


def package_charts(helm: Helm, rendered: list[RenderedRelease], out: Path) -> list[Path]:
    """Every release's chart as `<chart>-<version>.tgz` in `out/charts`: local directories are packaged,
    archives copied, charts from a repository pulled."""
    charts_out = out / "charts"
    charts_out.mkdir(parents=True, exist_ok=True)
    written = []
    for item in rendered:
        origin = Path(item.chart.origin)
        if origin.is_dir():
            archive = helm.package(origin, charts_out)
        elif origin.is_file():
            archive = origin
        else:
            helm.pull(item.chart, charts_out)
            archive = charts_out / f"{item.chart.name}-{item.chart.version}.tgz"
        written.append(place_chart_archive(archive, charts_out, item.chart.name, item.chart.version))
    return written
