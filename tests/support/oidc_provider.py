"""A real OpenID Connect provider for the identity tests: node `oidc-provider` (tests/support/oidc), shaped
like a Keycloak realm (issuer `.../realms/astrago`, claims `realm_access.roles`, `groups`,
`preferred_username`), with the device grant, client credentials with JWT access tokens, refresh tokens,
RP-initiated logout, and a control API to change users and rotate the signing key while tests run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.support.postgres import free_port

PROVIDER_DIR = Path(__file__).parent / "oidc"
CLIENT_ID = "astrago-client"
CLIENT_SECRET = "astrago-client-secret-for-tests"
CLI_CLIENT_ID = "astrago-cli"
CI_CLIENT_ID = "ci-bot"
CI_CLIENT_SECRET = "ci-bot-secret-for-tests"


def ensure_installed() -> None:
    """`npm ci` from the committed lock file, once per checkout (CI starts from a clean one)."""
    if (PROVIDER_DIR / "node_modules" / "oidc-provider").exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is needed for the OIDC provider of the identity tests (.ci installs node)")
    subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=PROVIDER_DIR, check=True, timeout=600
    )


@dataclass
class OidcProvider:
    server_url: str  # the AstraGo server whose callback and logout URIs are registered
    users: dict[str, dict[str, Any]]
    workdir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}/realms/astrago"

    def config(self) -> dict[str, Any]:
        return {
            "realm": "astrago",
            "audience": CLIENT_ID,
            "access_token_ttl": 120,
            "clients": [
                {
                    "client_id": CLIENT_ID,
                    "client_secret": CLIENT_SECRET,
                    "redirect_uris": [f"{self.server_url}/api/v1/auth/oidc/callback"],
                    "post_logout_redirect_uris": [f"{self.server_url}/"],
                    "grant_types": ["authorization_code", "refresh_token"],
                    "response_types": ["code"],
                },
                {
                    "client_id": CLI_CLIENT_ID,
                    "token_endpoint_auth_method": "none",
                    "application_type": "native",  # loopback redirects on any port (RFC 8252)
                    "redirect_uris": ["http://127.0.0.1/callback"],
                    "grant_types": [
                        "urn:ietf:params:oauth:grant-type:device_code",
                        "authorization_code",
                        "refresh_token",
                    ],
                    "response_types": ["code"],
                },
                {
                    "client_id": CI_CLIENT_ID,
                    "client_secret": CI_CLIENT_SECRET,
                    "redirect_uris": [],
                    "grant_types": ["client_credentials"],
                    "response_types": [],
                },
            ],
            "service_accounts": {CI_CLIENT_ID: {"groups": ["/astrago/ml/member"]}},
            "users": self.users,
        }

    def start(self) -> None:
        ensure_installed()
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "oidc.json"
        config.write_text(json.dumps(self.config()))
        log = (self.workdir / "oidc.log").open("wb")
        self.process = subprocess.Popen(
            ["node", str(PROVIDER_DIR / "provider.mjs"), str(self.port), str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "NODE_ENV": "test"},
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"OIDC provider exited:\n{(self.workdir / 'oidc.log').read_text()}")
            try:
                if httpx.get(f"{self.issuer}/.well-known/openid-configuration", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("OIDC provider not ready in 30 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def set_user(self, user_id: str, **changes: Any) -> None:
        base = f"http://127.0.0.1:{self.port}"
        httpx.post(f"{base}/__control/users/{user_id}", json=changes, timeout=10).raise_for_status()

    def rotate_key(self) -> str:
        base = f"http://127.0.0.1:{self.port}"
        response = httpx.post(f"{base}/__control/rotate", timeout=10)
        response.raise_for_status()
        return str(response.json()["kid"])

    def client_credentials_token(self) -> str:
        response = httpx.post(
            f"{self.issuer}/token",
            data={"grant_type": "client_credentials"},
            auth=(CI_CLIENT_ID, CI_CLIENT_SECRET),
            timeout=10,
        )
        response.raise_for_status()
        return str(response.json()["access_token"])

    def server_env(self, **extra: str) -> dict[str, str]:
        """What the AstraGo server needs to use this provider (the chart passes the same variables)."""
        return {
            "ASTRAGO_OIDC_ISSUER": self.issuer,
            "ASTRAGO_OIDC_CLIENT_ID": CLIENT_ID,
            "ASTRAGO_OIDC_CLIENT_SECRET": CLIENT_SECRET,
            "ASTRAGO_OIDC_CLI_CLIENT_ID": CLI_CLIENT_ID,
            **extra,
        }
