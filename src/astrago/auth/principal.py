"""Who is calling, and what they may do: the platform role and their role in each workspace."""

from __future__ import annotations

from dataclasses import dataclass, field

from astrago.domain.enums import WorkspaceRole


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: str
    username: str
    is_admin: bool
    roles: dict[str, WorkspaceRole] = field(default_factory=dict)  # workspace id -> role
    read_only: bool = False  # a read-only API token: safe methods only
    session_id: str | None = None  # the token or session this call came with (None: an IdP bearer token)

    def role_in(self, workspace_id: str) -> WorkspaceRole | None:
        return self.roles.get(workspace_id)

    def can(self, workspace_id: str, needed: WorkspaceRole) -> bool:
        """Admins may do anything; others need at least `needed` in that workspace."""
        if self.is_admin:
            return True
        role = self.roles.get(workspace_id)
        return role is not None and role.at_least(needed)
