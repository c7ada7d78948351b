"""From an IdP's claims to AstraGo roles: a pure function of the claims and the configured mapping.

Defaults fit Keycloak: realm role `astrago-admin` (claim `realm_access.roles`) makes a platform admin, and
group `/astrago/<workspace>/<role>` (claim `groups`, full group paths) gives that role in that workspace.
Other IdPs: point `role_claims` at any list claim (e.g. `resource_access.astrago-client.roles`) and
`group_claim` at theirs."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from astrago.domain.enums import WorkspaceRole

_WORKSPACE_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_USERNAME_CLEAN = re.compile(r"[^a-zA-Z0-9._-]")


@dataclass(frozen=True)
class RoleMapping:
    admin_roles: Sequence[str] = ("astrago-admin",)
    role_claims: Sequence[str] = ("realm_access.roles",)
    group_claim: str = "groups"
    group_prefix: str = "/astrago/"


@dataclass(frozen=True)
class IdpIdentity:
    subject: str
    username: str
    admin: bool
    workspaces: dict[str, WorkspaceRole] = field(default_factory=dict)


def claim_at(claims: Mapping[str, Any], path: str) -> Any:
    """`realm_access.roles` → claims["realm_access"]["roles"]; a dotted key that exists as-is wins
    (client ids may contain dots)."""
    if path in claims:
        return claims[path]
    node: Any = claims
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def workspace_roles(groups: Sequence[str], prefix: str) -> dict[str, WorkspaceRole]:
    """`/astrago/ml-a/member` → {"ml-a": member}; several groups for one workspace keep the strongest."""
    roles: dict[str, WorkspaceRole] = {}
    for group in groups:
        if not group.startswith(prefix):
            continue
        parts = group[len(prefix) :].strip("/").split("/")
        if len(parts) != 2 or not _WORKSPACE_NAME.match(parts[0]):
            continue
        try:
            role = WorkspaceRole(parts[1])
        except ValueError:
            continue
        current = roles.get(parts[0])
        if current is None or role.at_least(current):
            roles[parts[0]] = role
    return roles


def username_from(claims: Mapping[str, Any]) -> str:
    for key in ("preferred_username", "email", "sub"):
        value = claims.get(key)
        if isinstance(value, str) and value:
            return _USERNAME_CLEAN.sub("-", value)[:64].lstrip("._-") or "user"
    return "user"


def identity_from(claims: Mapping[str, Any], issuer: str, mapping: RoleMapping) -> IdpIdentity:
    roles = {r for path in mapping.role_claims for r in _strings(claim_at(claims, path))}
    groups = _strings(claim_at(claims, mapping.group_claim))
    return IdpIdentity(
        subject=f"{issuer} {claims['sub']}",
        username=username_from(claims),
        admin=bool(roles & set(mapping.admin_roles)),
        workspaces=workspace_roles(groups, mapping.group_prefix),
    )
