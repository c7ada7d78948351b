"""A real AstraGo server signed into by a real OIDC provider (node oidc-provider shaped like Keycloak)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.integration.platform.conftest import admin, gate, make_user, server  # noqa: F401 (shared)
from tests.support.oidc_provider import OidcProvider
from tests.support.server import ServerProcess

ALICE = {
    "password": "alice-password-1",
    "preferred_username": "alice",
    "email": "alice@example.org",
    "realm_roles": [],
    "groups": ["/astrago/ml/manager", "/astrago/vision/viewer", "/other-app/admins"],
}
BOB = {
    "password": "bob-password-1",
    "preferred_username": "bob",
    "realm_roles": ["astrago-admin"],
    "groups": [],
}
CAROL = {**ALICE, "password": "carol-password-1", "preferred_username": "carol", "email": "carol@example.org"}


@dataclass
class Sso:
    server: ServerProcess
    idp: OidcProvider


@pytest.fixture(scope="module")
def sso(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sso]:
    """One IdP and one server for the module; tests that change a user at the IdP use their own user."""
    root = tmp_path_factory.mktemp("sso")
    platform = ServerProcess(data_dir=root / "data")
    users = {"alice": dict(ALICE), "bob": dict(BOB), "carol": dict(CAROL)}
    idp = OidcProvider(platform.url, users, workdir=root / "idp")
    idp.start()
    # Re-check sessions at the IdP on every request, so a change there shows at the next request.
    platform.extra_env = idp.server_env(ASTRAGO_OIDC_RECHECK_S="0")
    try:
        platform.start()
        yield Sso(platform, idp)
    finally:
        platform.stop()
        idp.stop()
