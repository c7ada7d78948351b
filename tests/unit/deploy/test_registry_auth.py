"""Registry authentication of `preflight`: Harbor's Bearer token flow and Basic auth.

The loopback `docker-registry` of the integration tests runs without auth: a token-auth registry needs a
token server and signing certificates, and htpasswd needs bcrypt, neither of which is available here. So
this test alone answers the registry's HTTP exchanges with httpx.MockTransport, following the
distribution spec's token flow (401 + WWW-Authenticate: Bearer realm/service/scope → GET realm → token)."""

from __future__ import annotations

import base64

import httpx
import pytest

from astrago.deploy.errors import DeployError
from astrago.deploy.preflight import Registry

TOKEN = "t0ken"
CREDENTIALS = "Basic " + base64.b64encode(b"robot:secret").decode()


def harbor(request: httpx.Request) -> httpx.Response:
    if request.url.path == "/service/token":
        if request.headers.get("authorization") != CREDENTIALS:
            return httpx.Response(401)
        assert request.url.params["scope"] == "repository:astrago/core:pull"
        assert request.url.params["service"] == "harbor-registry"
        return httpx.Response(200, json={"token": TOKEN})
    if request.headers.get("authorization") != f"Bearer {TOKEN}":
        challenge = 'Bearer realm="https://harbor.local/service/token",service="harbor-registry"'
        return httpx.Response(401, headers={"WWW-Authenticate": challenge})
    if request.url.path == "/v2/astrago/core/manifests/1.0.80":
        assert "application/vnd.oci.image.index.v1+json" in request.headers["accept"]
        return httpx.Response(200)
    return httpx.Response(404)


def test_bearer_token_flow() -> None:
    transport = httpx.MockTransport(harbor)
    with Registry(
        "https://harbor.local", username="robot", password="secret", transport=transport
    ) as registry:
        assert registry.has_manifest("astrago/core", "1.0.80") == (True, "")
        assert registry.has_manifest("astrago/core", "1.0.81") == (False, "not in the registry")


def test_token_refused_without_credentials() -> None:
    with (
        Registry("https://harbor.local", transport=httpx.MockTransport(harbor)) as registry,
        pytest.raises(DeployError, match="refused a pull token"),
    ):
        registry.has_manifest("astrago/core", "1.0.80")


def test_basic_auth_and_denied_access() -> None:
    def basic(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v2/":
            return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="registry"'})
        if request.headers.get("authorization") == CREDENTIALS:
            return httpx.Response(200)
        return httpx.Response(403)

    transport = httpx.MockTransport(basic)
    with Registry(
        "http://10.61.3.8:35000", username="robot", password="secret", transport=transport
    ) as registry:
        assert registry.has_manifest("grafana/loki", "2.9.2") == (True, "")
    with Registry("http://10.61.3.8:35000", transport=transport) as anonymous:
        present, detail = anonymous.has_manifest("grafana/loki", "2.9.2")
    assert not present
    assert "access denied (HTTP 403)" in detail
