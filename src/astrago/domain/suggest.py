"""Did-you-mean for names a person types: workspaces, users, YAML keys, GPU models, states."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice nearest to `word` (case-insensitive), if one is near enough to be a typo of it."""
    by_folded = {choice.lower(): choice for choice in choices}
    found = difflib.get_close_matches(word.lower(), list(by_folded), n=1, cutoff=0.6)
    return by_folded[found[0]] if found else None


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """` (did you mean 'x'?)` for the closest choice, or an empty string."""
    found = closest(word, choices)
    return f" (did you mean {found!r}?)" if found else ""
