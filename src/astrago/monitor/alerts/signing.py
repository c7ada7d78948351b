"""Webhook signatures: HMAC-SHA256 over "<timestamp>.<body>" with the channel's secret.

The receiver recomputes it from the `X-AstraGo-Timestamp` header and the raw body, compares in constant
time, and refuses a timestamp too far from its clock, so a captured request cannot be replayed later."""

from __future__ import annotations

import hashlib
import hmac
import secrets

SIGNATURE_HEADER = "X-AstraGo-Signature"
TIMESTAMP_HEADER = "X-AstraGo-Timestamp"
DELIVERY_HEADER = "X-AstraGo-Delivery"
EVENT_HEADER = "X-AstraGo-Event"
SCHEME = "sha256"
DEFAULT_TOLERANCE_S = 300


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The header's value: `sha256=<hex>`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"{SCHEME}={mac.hexdigest()}"


def verify(
    secret: str, timestamp_header: str, signature_header: str, body: bytes, now: float,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> bool:  # fmt: skip
    """True when the signature matches and the timestamp is within `tolerance_s` of `now`."""
    try:
        timestamp = int(timestamp_header)
    except ValueError:
        return False
    if abs(now - timestamp) > tolerance_s:
        return False
    return hmac.compare_digest(signature(secret, timestamp, body), signature_header)
