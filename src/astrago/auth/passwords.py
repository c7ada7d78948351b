"""Password hashing with argon2id (argon2-cffi's recommended parameters), and the password policy.

Hashing costs ~100 ms of CPU and 64 MiB of memory by design, so the async functions run it on a small pool
of its own threads: the event loop keeps serving other requests, at most one hash per core runs at once
(48 concurrent logins cannot take 3 GiB), and callers hash before opening any database transaction."""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
_pool = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2), thread_name_prefix="argon2")

MAX_PASSWORD_LENGTH = 1024
# The most common passwords of public breach corpora that are at least 8 characters long.
_COMMON = frozenset(
    [
        "password",
        "password1",
        "password12",
        "password123",
        "password1234",
        "12345678",
        "123456789",
        "1234567890",
        "11111111",
        "qwertyui",
        "qwerty123",
        "qwertyuiop",
        "1q2w3e4r",
        "1q2w3e4r5t",
        "1qaz2wsx",
        "zaq12wsx",
        "iloveyou",
        "sunshine",
        "princess",
        "football",
        "baseball",
        "welcome1",
        "welcome123",
        "abc12345",
        "abcd1234",
        "admin123",
        "administrator",
        "letmein1",
        "trustno1",
        "passw0rd",
        "p@ssw0rd",
        "p@ssword",
        "changeme",
        "changeme1",
        "00000000",
        "87654321",
        "88888888",
        "superman",
        "starwars",
        "monkey123",
        "dragon123",
        "master123",
        "computer",
        "internet",
        "whatever",
        "asdfghjk",
        "asdf1234",
        "q1w2e3r4",
        "secret123",
    ]
)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


@cache
def _decoy_hash() -> str:
    return _hasher.hash("an unknown user's login costs as much as a wrong password")


async def hash_password_async(password: str) -> str:
    return await asyncio.get_running_loop().run_in_executor(_pool, hash_password, password)


async def verify_password_async(password_hash: str | None, password: str) -> bool:
    """Verify off the event loop. Without a hash (unknown user, SSO account) a decoy hash is verified, so
    that the answer takes as long as a wrong password and does not tell which names exist."""
    loop = asyncio.get_running_loop()
    if not password_hash:
        await loop.run_in_executor(_pool, verify_password, _decoy_hash(), password)
        return False
    return await loop.run_in_executor(_pool, verify_password, password_hash, password)


def password_problems(password: str, username: str, min_length: int) -> list[str]:
    """What is wrong with a new password (empty when it is acceptable)."""
    problems = []
    if len(password) < min_length:
        problems.append(f"it must be at least {min_length} characters long")
    if len(password) > MAX_PASSWORD_LENGTH:
        problems.append(f"it must be at most {MAX_PASSWORD_LENGTH} characters long")
    if username and username.lower() in password.lower():
        problems.append("it must not contain the user name")
    if password.lower() in _COMMON or len(set(password)) < 4:
        problems.append("it is too easy to guess")
    return problems
