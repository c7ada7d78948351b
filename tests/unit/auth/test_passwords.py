from __future__ import annotations

import pytest

from astrago.auth import passwords
from astrago.auth.passwords import hash_password, password_problems, verify_password_async


def test_policy_refuses_short_guessable_and_name_bearing_passwords() -> None:
    assert password_problems("correct horse battery", "kim", 8) == []
    assert "at least 12" in password_problems("short-one", "kim", 12)[0]
    assert password_problems("kim-is-great-1", "Kim", 8) == ["it must not contain the user name"]
    assert password_problems("password123", "kim", 8) == ["it is too easy to guess"]
    assert password_problems("aaaaaaaaaaaa", "kim", 8) == ["it is too easy to guess"]


async def test_an_unknown_user_costs_one_argon2_verification_like_a_wrong_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No hash (unknown user, SSO account) verifies a decoy hash: the same work as a wrong password, so the
    answer's timing does not tell which names exist (the timing itself: benchmarks/identity)."""
    calls: list[str] = []
    real = passwords.verify_password

    def counting(password_hash: str | None, password: str) -> bool:
        calls.append(password_hash or "")
        return real(password_hash, password)

    monkeypatch.setattr(passwords, "verify_password", counting)
    stored = hash_password("the right one")
    assert await verify_password_async(stored, "a wrong one") is False
    assert await verify_password_async(None, "a wrong one") is False
    assert await verify_password_async(stored, "the right one") is True
    assert len(calls) == 3
    assert calls[1].startswith("$argon2id$")  # the decoy is a real argon2id hash
