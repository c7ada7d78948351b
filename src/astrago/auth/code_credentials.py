"""Download credentials for code bundles: what a workload's pod shows to fetch its code, and nothing else.

A credential names one workload and an expiry, and is signed (HMAC-SHA256) over the bundle id, the
workload id and the expiry with a key only the servers hold. It is never a user's token and opens
nothing but `GET /api/v1/code-bundles/<bundle>/archive` for that one bundle, until it expires; the server
also refuses it once its workload has ended. Nothing is stored per credential: the signature is checked
by recomputing it, so every server process that shares the key (`code_credential_key`, or a key file in
the data directory for a single server) can check what another issued."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from astrago.config import Settings

KEY_FILE = "code-credential.key"
_DOMAIN = b"astrago code bundle download v1"


class InvalidCodeCredential(ValueError):
    """The credential is malformed, expired, or signed for another bundle or by another key."""


@dataclass(frozen=True, slots=True)
class CodeCredential:
    workload_id: str
    expires_at: int  # Unix time


def issue(key: bytes, bundle_id: str, workload_id: str, expires_at: int) -> str:
    return f"{workload_id}.{expires_at}.{_signature(key, bundle_id, workload_id, expires_at)}"


def verify(key: bytes, bundle_id: str, token: str, now: float | None = None) -> CodeCredential:
    workload_id, _, rest = token.partition(".")
    expiry, _, signature = rest.partition(".")
    if not (workload_id and expiry.isdigit() and signature):
        raise InvalidCodeCredential("the code download credential is malformed")
    expires_at = int(expiry)
    expected = _signature(key, bundle_id, workload_id, expires_at)
    if not hmac.compare_digest(expected, signature):
        raise InvalidCodeCredential("the code download credential is not valid for this code bundle")
    if expires_at <= (time.time() if now is None else now):
        raise InvalidCodeCredential("the code download credential has expired")
    return CodeCredential(workload_id, expires_at)


def _signature(key: bytes, bundle_id: str, workload_id: str, expires_at: int) -> str:
    message = b"\0".join((_DOMAIN, bundle_id.encode(), workload_id.encode(), str(expires_at).encode()))
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def server_key(settings: Settings) -> bytes:
    configured = settings.code_credential_key
    return load_key(configured.get_secret_value() if configured else None, settings.data_dir)


def load_key(configured: str | None, data_dir: Path) -> bytes:
    """The configured key (the same for every server process, e.g. from the chart's Secret), else one made
    once in the data directory, readable by the server's user only."""
    if configured:
        return configured.encode()
    path = data_dir / KEY_FILE
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    partial = data_dir / f".{KEY_FILE}.{os.getpid()}.partial"
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(secrets.token_hex(32).encode())
    try:
        os.link(partial, path)  # never replaces a key another process made first
    except FileExistsError:
        pass
    finally:
        partial.unlink(missing_ok=True)
    return path.read_bytes()
