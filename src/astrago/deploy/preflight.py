"""`astrago deploy preflight`: before an air-gapped install, ask the offline registry (Registry HTTP API v2)
for every image the environment renders, and the offline chart repository (index.yaml) for every chart.
A missing image is the install's most common failure (seed 003): each is listed with the values key to fix."""

from __future__ import annotations

import re
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml

from astrago.deploy.bundle import BundledImage
from astrago.deploy.errors import DeployError
from astrago.deploy.images import ImageRef, mirror_reference, parse_image
from astrago.deploy.render import RenderedRelease

MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)
BEARER = re.compile(r'(\w+)="([^"]*)"')


@dataclass(frozen=True)
class ImageCheck:
    image: BundledImage
    mirrored: ImageRef
    present: bool
    detail: str = ""


@dataclass(frozen=True)
class ChartCheck:
    release: str
    chart: str
    version: str
    present: bool


class Registry:
    """A registry speaking the distribution API v2. Without a scheme, HTTPS is tried first, then plain HTTP
    (offline registries of the seeds listen on plain HTTP, e.g. 10.61.3.8:35000)."""

    def __init__(
        self,
        address: str,
        *,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        scheme, sep, host = address.partition("://")
        self.host = host if sep else address
        self.schemes = [scheme] if sep else ["https", "http"]
        self.auth = httpx.BasicAuth(username, password) if username and password else None
        self.client = httpx.Client(timeout=timeout, follow_redirects=True, transport=transport)
        self.base = ""
        self._token: str | None = None

    def __enter__(self) -> Registry:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def connect(self) -> None:
        errors = []
        for scheme in self.schemes:
            base = f"{scheme}://{self.host}"
            try:
                response = self.client.get(f"{base}/v2/")
            except httpx.HTTPError as exc:
                errors.append(f"{base}: {exc.__class__.__name__}: {exc}")
                continue
            if response.status_code in (200, 401):
                self.base = base
                return
            errors.append(f"{base}/v2/ answered HTTP {response.status_code}: not a container registry")
        raise DeployError(
            "registry is unreachable: " + "; ".join(errors),
            source=self.host,
            hint="check --registry HOST:PORT and that the registry is running",
        )

    def has_manifest(self, repository: str, reference: str) -> tuple[bool, str]:
        url = f"{self.base}/v2/{repository}/manifests/{reference}"
        response = self._head(url, repository)
        if response.status_code == 200:
            return True, ""
        if response.status_code == 404:
            return False, "not in the registry"
        if response.status_code in (401, 403):
            return False, f"access denied (HTTP {response.status_code}): pass --username/--password"
        return False, f"HTTP {response.status_code}"

    def _head(self, url: str, repository: str) -> httpx.Response:
        headers = {"Accept": MANIFEST_TYPES}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        if self.auth is not None and not self._token:
            response = self.client.head(url, headers=headers, auth=self.auth)
        else:
            response = self.client.head(url, headers=headers)
        challenge = response.headers.get("www-authenticate", "")
        if response.status_code == 401 and challenge.lower().startswith("bearer"):
            self._token = self._bearer_token(challenge, repository)
            headers["Authorization"] = f"Bearer {self._token}"
            response = self.client.head(url, headers=headers)
        return response

    def _bearer_token(self, challenge: str, repository: str) -> str:
        """The token flow of Harbor and Docker Hub: ask the realm for a pull token for this repository."""
        params = dict(BEARER.findall(challenge))
        realm = params.pop("realm", "")
        params.setdefault("scope", f"repository:{repository}:pull")
        response = self.client.get(realm, params=params, auth=self.auth) if realm else None
        if response is None or response.status_code != 200:
            raise DeployError("the registry's token service refused a pull token", source=realm or self.host)
        body = response.json()
        return str(body.get("token") or body.get("access_token") or "")


def offline_reference(image: str, registry_host: str) -> ImageRef:
    ref = parse_image(image)
    if ref.registry == registry_host:
        return ref
    return parse_image(mirror_reference(image, registry_host))


def check_images(registry: Registry, images: Iterable[BundledImage]) -> list[ImageCheck]:
    checks = []
    for image in images:
        mirrored = offline_reference(image.image, registry.host)
        present, detail = registry.has_manifest(mirrored.repository, mirrored.reference)
        checks.append(ImageCheck(image, mirrored, present, detail))
    return checks


def check_charts(
    rendered: list[RenderedRelease], *, chart_repo: str | None, charts_dir: Path | None
) -> list[ChartCheck]:
    """Charts of releases that come from a repository, looked up in the offline repo's index (else the chart
    directory).
    Charts of this repository (`path:` releases) travel with it and are not looked up."""
    wanted = [
        (item.release.name, item.chart.name, str(item.chart.version))
        for item in rendered
        if item.release.chart
    ]
    available: set[tuple[str, str]] = set()
    if chart_repo:
        available = _repository_index(chart_repo)
    elif charts_dir is not None:
        available |= {_chart_from_archive(path) for path in charts_dir.glob("*.tgz")}
        for chart_yaml in charts_dir.glob("*/Chart.yaml"):
            meta = yaml.safe_load(chart_yaml.read_text()) or {}
            available.add((str(meta.get("name")), str(meta.get("version"))))
    return [
        ChartCheck(release, chart, version, (chart, version) in available)
        for release, chart, version in wanted
    ]


def _chart_from_archive(path: Path) -> tuple[str, str]:
    """(name, version) from the archive's Chart.yaml: file names cannot tell `a-b-1.0` from `a-b-1.0-rc1`."""
    try:
        with tarfile.open(path, "r:gz") as archive:
            member = next(
                m for m in archive.getmembers() if m.name.count("/") == 1 and m.name.endswith("/Chart.yaml")
            )
            handle = archive.extractfile(member)
            meta = yaml.safe_load(handle.read()) if handle else {}
    except (tarfile.TarError, StopIteration, yaml.YAMLError, OSError) as exc:
        raise DeployError(f"not a chart archive: {exc}", source=path) from exc
    return str(meta.get("name")), str(meta.get("version"))


def _repository_index(chart_repo: str) -> set[tuple[str, str]]:
    url = f"{chart_repo.rstrip('/')}/index.yaml"
    try:
        response = httpx.get(url, timeout=10.0, follow_redirects=True)
    except httpx.HTTPError as exc:
        raise DeployError(f"chart repository is unreachable: {exc}", source=url) from exc
    if response.status_code != 200:
        raise DeployError(f"chart repository answered HTTP {response.status_code}", source=url)
    try:
        index = yaml.safe_load(response.text) or {}
    except yaml.YAMLError as exc:
        raise DeployError(f"index.yaml is not valid YAML: {exc}", source=url) from exc
    entries = index.get("entries") or {}
    return {
        (str(name), str(entry.get("version")))
        for name, versions in entries.items()
        for entry in versions or []
    }
