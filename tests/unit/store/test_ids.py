"""Workload and object ids: Kubernetes-name-safe, starting with a letter, and spread over the whole
alphabet in every position (one draw from the system's random source per id)."""

from __future__ import annotations

import string
from collections import Counter

from astrago.store.ids import new_id

ALPHABET = string.digits + string.ascii_lowercase


def test_an_id_starts_with_a_letter_and_uses_only_lowercase_letters_and_digits() -> None:
    for _ in range(2_000):
        identifier = new_id()
        assert len(identifier) == 10
        assert identifier[0] in string.ascii_lowercase
        assert set(identifier) <= set(ALPHABET)


def test_every_position_takes_every_allowed_character() -> None:
    ids = [new_id() for _ in range(20_000)]
    assert {i[0] for i in ids} == set(string.ascii_lowercase)
    for position in range(1, 10):
        seen = Counter(i[position] for i in ids)
        assert set(seen) == set(ALPHABET)
        # 20,000 draws over 36 characters: about 556 each; a stuck or skewed digit would be far off
        assert min(seen.values()) > 400
        assert max(seen.values()) < 720


def test_other_lengths() -> None:
    assert len(new_id(1)) == 1
    assert new_id(1).isalpha()
    assert len(new_id(32)) == 32
