from __future__ import annotations

from datetime import UTC, datetime, timedelta

from astrago.auth.sessions import why_invalid
from astrago.store.models import ApiToken, User

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
IDLE = timedelta(hours=2)


def _token(kind: str, **fields: object) -> ApiToken:
    user = User(id="u", username="kim", active=fields.pop("active", True))
    values = {
        "revoked": False,
        "created_at": NOW - timedelta(hours=1),
        "last_used_at": None,
        "expires_at": None,
    }
    values.update(fields)
    token = ApiToken(id="t", user_id="u", name="n", kind=kind, token_hash="h", **values)
    token.user = user
    return token


def test_login_sessions_end_when_idle_or_at_their_absolute_expiry() -> None:
    assert why_invalid(_token("session", last_used_at=NOW - timedelta(minutes=5)), NOW, IDLE) is None
    idle = _token("browser", last_used_at=NOW - timedelta(hours=3), created_at=NOW - timedelta(hours=4))
    assert "idle" in (why_invalid(idle, NOW, IDLE) or "")
    assert why_invalid(_token("session", expires_at=NOW), NOW, IDLE) == "it has expired"


def test_api_tokens_only_expire_at_their_date_and_nothing_survives_revocation_or_a_disabled_account() -> None:
    unused = _token("api", created_at=NOW - timedelta(days=30), expires_at=NOW + timedelta(days=60))
    assert why_invalid(unused, NOW, IDLE) is None
    assert why_invalid(_token("api", revoked=True), NOW, IDLE) is not None
    assert why_invalid(_token("api", active=False), NOW, IDLE) == "the account is disabled"
