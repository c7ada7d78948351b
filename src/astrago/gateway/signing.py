"""Signed, expiring, purpose-bound values for the gateway: the one-time ticket a browser exchanges for a
proxy cookie, and the cookie itself. HMAC-SHA256 over a JSON payload with a server key; nothing secret is
inside (a user id, a workload id, an expiry), so a value is only ever as strong as its signature.

The key comes from `ASTRAGO_GATEWAY_KEY` (every API process of a deployment must share it), else from
`<data dir>/gateway.key`, created on first use (0600)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

KEY_BYTES = 32


class SignedValueError(ValueError):
    """Not a value this server signed for this purpose, or expired: the caller answers 401."""


class ProxyGrant(BaseModel):
    """Who may reach which workload through the gateway, until when."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    purpose: str  # "ticket" or "cookie": a ticket is never accepted as a cookie and vice versa
    user_id: str
    workload_id: str
    expires_at: float
    nonce: str  # makes each ticket unique, so it can be used once


@dataclass(frozen=True, slots=True)
class Signer:
    key: bytes

    @classmethod
    def load(cls, configured: str | None, data_dir: Path) -> Signer:
        if configured:
            return cls(hashlib.sha256(configured.encode()).digest())
        path = data_dir / "gateway.key"
        try:
            return cls(path.read_bytes())
        except FileNotFoundError:
            pass
        key = secrets.token_bytes(KEY_BYTES)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process created it first: use theirs
            return cls(path.read_bytes())
        with os.fdopen(fd, "wb") as file:
            file.write(key)
        return cls(key)

    def sign(self, grant: ProxyGrant) -> str:
        payload = _b64(grant.model_dump_json().encode())
        return f"{payload}.{_b64(self._mac(payload))}"

    def verify(self, value: str, purpose: str, workload_id: str) -> ProxyGrant:
        payload, _, mac = value.partition(".")
        try:
            expected, given = self._mac(payload), _unb64(mac)
        except (binascii.Error, ValueError):
            raise SignedValueError("malformed") from None
        if not hmac.compare_digest(expected, given):
            raise SignedValueError("bad signature")
        try:
            grant = ProxyGrant.model_validate(json.loads(_unb64(payload)))
        except (ValueError, ValidationError):
            raise SignedValueError("malformed") from None
        if grant.purpose != purpose or grant.workload_id != workload_id:
            raise SignedValueError("not for this use")
        if grant.expires_at <= time.time():
            raise SignedValueError("expired")
        return grant

    def _mac(self, payload: str) -> bytes:
        return hmac.new(self.key, payload.encode(), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
