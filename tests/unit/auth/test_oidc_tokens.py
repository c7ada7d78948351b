"""The checks on IdP tokens (joserfc does them; this pins which ones and the clock skew), with keys made
here: the issuer's discovery and JWKS are served by a local HTTP server, as an IdP would."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, ClassVar

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from astrago.auth.oidc import OidcClient, OidcError

KEY = RSAKey.generate_key(2048, parameters={"kid": "k1", "alg": "RS256", "use": "sig"})
OTHER = RSAKey.generate_key(2048, parameters={"kid": "k1", "alg": "RS256", "use": "sig"})  # same kid, forged


class _Idp(BaseHTTPRequestHandler):
    documents: ClassVar[dict[str, Any]] = {}

    def do_GET(self) -> None:
        body = json.dumps(self.documents[self.path]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        return


@pytest.fixture
def client() -> Iterator[OidcClient]:
    server = HTTPServer(("127.0.0.1", 0), _Idp)
    issuer = f"http://127.0.0.1:{server.server_address[1]}/realms/astrago"
    _Idp.documents = {
        "/realms/astrago/.well-known/openid-configuration": {
            "issuer": issuer,
            "authorization_endpoint": f"{issuer}/auth",
            "token_endpoint": f"{issuer}/token",
            "jwks_uri": f"{issuer}/jwks",
        },
        "/realms/astrago/jwks": KeySet([KEY]).as_dict(private=False),
    }
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield OidcClient(
        issuer=issuer, client_id="astrago-client", client_secret=None, scopes="openid", leeway_s=60
    )
    server.shutdown()
    server.server_close()


def _token(client: OidcClient, key: RSAKey = KEY, **claims: Any) -> str:
    now = int(time.time())
    body = {
        "iss": client.issuer,
        "aud": "astrago-client",
        "sub": "kim",
        "iat": now,
        "exp": now + 300,
        **claims,
    }
    return jwt.encode({"alg": "RS256", "kid": "k1"}, body, key)


async def test_a_valid_token_and_the_allowed_clock_skew(client: OidcClient) -> None:
    assert (await client.verify(_token(client), "astrago-client"))["sub"] == "kim"
    skewed = _token(client, exp=int(time.time()) - 30, iat=int(time.time()) + 30)  # IdP clock 30 s off
    assert (await client.verify(skewed, "astrago-client"))["sub"] == "kim"


@pytest.mark.parametrize(
    ("claims", "audience", "nonce"),
    [
        ({"exp": int(time.time()) - 120}, "astrago-client", None),  # expired beyond the skew
        ({"aud": "another-app"}, "astrago-client", None),
        ({"iss": "https://elsewhere/realms/astrago"}, "astrago-client", None),
        ({"nonce": "replayed"}, "astrago-client", "expected"),
        ({}, "astrago-client", "expected"),  # an ID token without the nonce we sent
    ],
)
async def test_refused_tokens(
    client: OidcClient, claims: dict[str, Any], audience: str, nonce: str | None
) -> None:
    with pytest.raises(OidcError):
        await client.verify(_token(client, **claims), audience, nonce=nonce)


async def test_a_forged_signature_and_a_non_jwt_are_refused(client: OidcClient) -> None:
    with pytest.raises(OidcError, match="signature"):
        await client.verify(_token(client, key=OTHER), "astrago-client")
    with pytest.raises(OidcError, match="not a JWT"):
        await client.verify("not-a-token", "astrago-client")
