"""When a login session or an API token stops being valid: pure rules on its timestamps."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from astrago.store.models import ApiToken


class TokenKind(StrEnum):
    SESSION = "session"  # `astrago login` (password or --sso): expires when idle and at an absolute time
    BROWSER = "browser"  # the console's cookie session after SSO; same lifetimes as SESSION
    API = "api"  # `astrago token create`: expires at its expiry date only

    @property
    def is_login_session(self) -> bool:
        return self is not TokenKind.API


class TokenScope(StrEnum):
    ALL = "all"
    READ = "read"  # GET/HEAD/OPTIONS only


def why_invalid(token: ApiToken, now: datetime, idle: timedelta) -> str | None:
    """None while the token may be used; otherwise the reason, worded for the person holding it."""
    if token.revoked:
        return "it was revoked or its session was logged out"
    if not token.user.active:
        return "the account is disabled"
    if token.expires_at is not None and token.expires_at <= now:
        return "it has expired"
    if TokenKind(token.kind).is_login_session:
        last = token.last_used_at or token.created_at
        if now - last > idle:
            return f"the session was idle for more than {int(idle.total_seconds() // 60)} minutes"
    return None
