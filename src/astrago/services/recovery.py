"""Recovering a lost password from the server's machine (`astrago admin reset-password`).

No one is logged in: access to the data directory (or the database URL) is the authority, as with any
database administrator. The reset is audited under the operator's name on that machine."""

from __future__ import annotations

import getpass
import secrets

from astrago.auth.passwords import hash_password
from astrago.services.context import ServiceContext
from astrago.services.errors import InvalidInput, NotFound
from astrago.services.schemas import MIN_PASSWORD_LENGTH
from astrago.store.repositories import UserRepository


class AccountRecovery:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    async def reset_password(self, username: str, password: str | None) -> str:
        """Set a new password (generated when None) and reactivate nothing else; returns the password."""
        if password is not None and len(password) < MIN_PASSWORD_LENGTH:
            raise InvalidInput(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
        new_password = password or secrets.token_urlsafe(12)
        async with self.ctx.mutation(None, "user.password_reset", username) as mutation:
            mutation.detail = f"reset on the server's machine by {_operator()}"
            users = UserRepository(mutation.session)
            user = await users.by_username(username)
            if user is None:
                known = ", ".join(sorted(u.username for u in await users.list()))
                raise NotFound(f"there is no user {username!r}; the users are: {known}")
            user.password_hash = hash_password(new_password)
        return new_password


def _operator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "an unknown local user"
