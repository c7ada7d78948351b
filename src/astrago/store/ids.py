"""Identifiers: short, random, URL- and Kubernetes-name-safe.

Random rather than sequential so a fresh database never reuses the id of a workload whose objects
still exist in a cluster (the Kubernetes backend adopts objects by id)."""

from __future__ import annotations

import secrets

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def new_id(length: int = 10) -> str:
    # first character a letter: ids are used in Kubernetes object names, which must start with one
    first = secrets.choice(_ALPHABET[10:])
    return first + "".join(secrets.choice(_ALPHABET) for _ in range(length - 1))
