"""How long an interactive or service replica may take to become ready, the same on every backend:
`options.readiness_timeout` seconds after its command starts (default 300 s), else it fails with a reason."""

from __future__ import annotations

from collections.abc import Mapping

from astrago.backends.base import BackendError

DEFAULT_READINESS_TIMEOUT_S = 300.0  # a notebook server on a busy machine can take a minute to listen
MAX_READINESS_TIMEOUT_S = 86400.0


def readiness_timeout_s(options: Mapping[str, str]) -> float:
    raw = options.get("readiness_timeout")
    try:
        timeout_s = float(raw) if raw is not None else DEFAULT_READINESS_TIMEOUT_S
    except ValueError:
        raise BackendError(f"readiness_timeout must be a number of seconds, not {raw!r}") from None
    if not 1 <= timeout_s <= MAX_READINESS_TIMEOUT_S:
        raise BackendError(f"readiness_timeout must be between 1 and 86400 seconds, not {raw}")
    return timeout_s
