"""Bearer tokens: random, shown once, stored only as a SHA-256 digest.

A fast digest is right here (unlike passwords): tokens carry 256 bits of entropy, so they cannot be
guessed, and every API call must look one up."""

from __future__ import annotations

import hashlib
import secrets

TOKEN_PREFIX = "ast_"


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
