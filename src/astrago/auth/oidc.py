"""Talking to the OpenID Connect provider (Keycloak or any other): discovery, keys, tokens.

The protocol is Authlib's (authorization code + PKCE, refresh) and joserfc's (JWT signatures and claims);
this module only wires them to the issuer's discovery document and keeps the issuer's keys fresh: a token
signed with a key the cached set lacks makes one re-fetch of the JWKS (key rotation); a `kid` still unknown
after that is not looked up again for `_UNKNOWN_KID_RETRY_S`, so forged `kid`s cannot turn into a request
storm against the IdP."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
from authlib.integrations.base_client import OAuthError
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.oauth2 import OAuth2Error
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jws import extract_compact

_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
_DISCOVERY_TTL_S = 3600.0
_UNKNOWN_KID_RETRY_S = 60.0


class OidcError(Exception):
    """The IdP refused, could not be reached, or sent something that does not verify."""


class IdpUnavailable(OidcError):
    pass


@dataclass(frozen=True)
class Discovery:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    end_session_endpoint: str | None
    device_authorization_endpoint: str | None
    revocation_endpoint: str | None

    @classmethod
    def parse(cls, body: dict[str, Any]) -> Discovery:
        try:
            return cls(
                issuer=str(body["issuer"]),
                authorization_endpoint=str(body["authorization_endpoint"]),
                token_endpoint=str(body["token_endpoint"]),
                jwks_uri=str(body["jwks_uri"]),
                end_session_endpoint=body.get("end_session_endpoint"),
                device_authorization_endpoint=body.get("device_authorization_endpoint"),
                revocation_endpoint=body.get("revocation_endpoint"),
            )
        except KeyError as exc:
            raise OidcError(f"the issuer's discovery document lacks {exc}") from exc


@dataclass
class OidcClient:
    issuer: str
    client_id: str
    client_secret: str | None
    scopes: str
    leeway_s: int
    tls_verify: bool | str = True
    _discovery: Discovery | None = None
    _discovered_at: float = 0.0
    _keys: KeySet | None = None

    def __post_init__(self) -> None:
        self.issuer = self.issuer.rstrip("/")
        self._lock = asyncio.Lock()
        self._missing_kids: dict[str, float] = {}

    def _http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=10.0, verify=self.tls_verify)

    async def discovery(self) -> Discovery:
        if self._discovery is not None and time.monotonic() - self._discovered_at < _DISCOVERY_TTL_S:
            return self._discovery
        url = f"{self.issuer}/.well-known/openid-configuration"
        body = await self._get_json(url)
        found = Discovery.parse(body)
        if found.issuer.rstrip("/") != self.issuer:  # OIDC Discovery §4.3: must match exactly
            raise OidcError(f"the discovery document names issuer {found.issuer}, not {self.issuer}")
        self._discovery, self._discovered_at = found, time.monotonic()
        return found

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            async with self._http() as http:
                response = await http.get(url)
        except httpx.HTTPError as exc:
            raise IdpUnavailable(f"the identity provider at {url} cannot be reached: {exc}") from exc
        if response.status_code != 200:
            raise IdpUnavailable(f"the identity provider answered {response.status_code} for {url}")
        try:
            body = response.json()
        except ValueError as exc:
            raise IdpUnavailable(f"the identity provider sent no JSON at {url}") from exc
        if not isinstance(body, dict):
            raise IdpUnavailable(f"the identity provider sent no JSON object at {url}")
        return body

    async def _key_set(self, wanted_kid: str | None = None) -> KeySet:
        """The issuer's keys; re-fetched when `wanted_kid` is not among them (rotation)."""
        async with self._lock:
            if self._keys is not None and (wanted_kid is None or self._has(wanted_kid)):
                return self._keys
            if wanted_kid is not None and self._keys is not None:
                missed_at = self._missing_kids.get(wanted_kid)
                if missed_at is not None and time.monotonic() - missed_at < _UNKNOWN_KID_RETRY_S:
                    return self._keys
            discovery = await self.discovery()
            try:
                self._keys = KeySet.import_key_set(await self._get_json(discovery.jwks_uri))  # type: ignore[arg-type]
            except (ValueError, JoseError) as exc:
                raise OidcError(f"the issuer's JWKS cannot be read: {exc}") from exc
            if wanted_kid is not None and not self._has(wanted_kid):
                if len(self._missing_kids) > 1000:
                    self._missing_kids.clear()
                self._missing_kids[wanted_kid] = time.monotonic()
            return self._keys

    def _has(self, kid: str) -> bool:
        return self._keys is not None and any(key.kid == kid for key in self._keys.keys)

    async def verify(self, token: str, audience: str, nonce: str | None = None) -> dict[str, Any]:
        """The claims of a JWT the issuer signed for `audience`, checked: signature, iss, aud, exp, nbf,
        iat (with the configured clock skew) and, for ID tokens, the nonce."""
        options: dict[str, Any] = {
            "iss": {"essential": True, "value": self.issuer},
            "aud": {"essential": True, "value": audience},
            "exp": {"essential": True},
            "sub": {"essential": True},
        }
        if nonce is not None:
            options["nonce"] = {"essential": True, "value": nonce}
        registry = jwt.JWTClaimsRegistry(leeway=self.leeway_s, **options)
        decoded = await self._decode(token)
        try:
            registry.validate(decoded.claims)
        except JoseError as exc:
            raise OidcError(f"the token is not valid: {exc.description or exc.error}") from exc
        return dict(decoded.claims)

    async def _decode(self, token: str) -> jwt.Token:
        try:
            kid = extract_compact(token.encode()).headers().get("kid")
        except (JoseError, ValueError) as exc:
            raise OidcError(f"the token is not a JWT: {exc}") from exc
        keys = await self._key_set(kid if isinstance(kid, str) else None)
        try:
            return jwt.decode(token, keys, algorithms=_ALGORITHMS)
        except (JoseError, ValueError) as exc:
            raise OidcError(f"the token's signature does not verify: {exc}") from exc

    def _oauth(self, client_id: str, redirect_uri: str | None = None) -> AsyncOAuth2Client:
        secret = self.client_secret if client_id == self.client_id else None
        return AsyncOAuth2Client(
            client_id=client_id,
            client_secret=secret,
            token_endpoint_auth_method="client_secret_basic" if secret else "none",
            scope=self.scopes,
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
            timeout=10.0,
            verify=self.tls_verify,
        )

    async def authorization_url(self, redirect_uri: str, state: str, nonce: str, verifier: str) -> str:
        discovery = await self.discovery()
        async with self._oauth(self.client_id, redirect_uri) as client:
            url, _ = client.create_authorization_url(
                discovery.authorization_endpoint, state=state, nonce=nonce, code_verifier=verifier
            )
        return str(url)

    async def exchange_code(self, code: str, verifier: str, redirect_uri: str) -> dict[str, Any]:
        discovery = await self.discovery()
        async with self._oauth(self.client_id, redirect_uri) as client:
            return await self._token_call(
                client.fetch_token(discovery.token_endpoint, code=code, code_verifier=verifier)
            )

    async def refresh(self, client_id: str, refresh_token: str) -> dict[str, Any]:
        discovery = await self.discovery()
        async with self._oauth(client_id) as client:
            return await self._token_call(
                client.refresh_token(discovery.token_endpoint, refresh_token=refresh_token)
            )

    @staticmethod
    async def _token_call(call: Any) -> dict[str, Any]:
        try:
            token = await call
        except (OAuth2Error, OAuthError) as exc:
            raise OidcError(
                f"the identity provider refused: {exc.error} {exc.description or ''}".strip()
            ) from exc
        except httpx.HTTPError as exc:
            raise IdpUnavailable(f"the identity provider cannot be reached: {exc}") from exc
        return dict(token)

    async def end_session_url(self, id_token: str | None, post_logout_redirect_uri: str) -> str | None:
        """Where to send the browser so that the IdP ends its session too (RP-initiated logout)."""
        discovery = await self.discovery()
        if not discovery.end_session_endpoint:
            return None
        params = {"client_id": self.client_id, "post_logout_redirect_uri": post_logout_redirect_uri}
        if id_token:
            params["id_token_hint"] = id_token
        return f"{discovery.end_session_endpoint}?{urlencode(params)}"
