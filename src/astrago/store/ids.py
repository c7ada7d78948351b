"""Identifiers: short, random, URL- and Kubernetes-name-safe.

Random rather than sequential so a fresh database never reuses the id of a workload whose objects
still exist in a cluster (the Kubernetes backend adopts objects by id)."""

from __future__ import annotations

import secrets

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def new_id(length: int = 10) -> str:
    """Uniform over the ids whose first character is a letter (Kubernetes object names must start with
    one), drawn with one call to the system's random source rather than one per character."""
    rest = length - 1
    number = secrets.randbelow(26 * 36**rest)
    number, last = divmod(number, 36**rest)
    characters = []
    for _ in range(rest):
        last, digit = divmod(last, 36)
        characters.append(_ALPHABET[digit])
    return _ALPHABET[10 + number] + "".join(characters)
