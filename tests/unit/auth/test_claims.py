from __future__ import annotations

from astrago.auth.claims import RoleMapping, claim_at, identity_from, username_from, workspace_roles
from astrago.domain.enums import WorkspaceRole

ISSUER = "https://sso.example.org/realms/astrago"
KEYCLOAK_CLAIMS = {
    "sub": "f1e2",
    "preferred_username": "kim.j",
    "realm_access": {"roles": ["offline_access", "astrago-admin"]},
    "resource_access": {"astrago-client": {"roles": ["operator"]}},
    "groups": ["/astrago/ml-a/member", "/astrago/ml-a/manager", "/astrago/vision/viewer", "/hr/all"],
}


def test_keycloak_defaults_give_admin_and_the_strongest_role_per_workspace() -> None:
    identity = identity_from(KEYCLOAK_CLAIMS, ISSUER, RoleMapping())
    assert identity.subject == f"{ISSUER} f1e2"
    assert identity.username == "kim.j"
    assert identity.admin is True
    assert identity.workspaces == {"ml-a": WorkspaceRole.MANAGER, "vision": WorkspaceRole.VIEWER}


def test_client_roles_and_another_group_layout_are_configurable() -> None:
    mapping = RoleMapping(
        admin_roles=("operator",),
        role_claims=("resource_access.astrago-client.roles",),
        group_claim="teams",
        group_prefix="gpu-",
    )
    claims = {"sub": "1", "email": "a@b.c", "teams": ["gpu-nlp/member"]}
    assert identity_from(claims, ISSUER, mapping).workspaces == {"nlp": WorkspaceRole.MEMBER}
    assert identity_from(KEYCLOAK_CLAIMS, ISSUER, mapping).admin is True
    assert identity_from({"sub": "2"}, ISSUER, RoleMapping()).admin is False


def test_groups_that_are_not_workspace_roles_are_ignored() -> None:
    groups = ["/astrago/ml-a/owner", "/astrago/Bad_Name/member", "/astrago/ml-a", "/astrago/a/b/member"]
    assert workspace_roles(groups, "/astrago/") == {}
    not_strings = {"sub": "1", "groups": [7, {"x": 1}], "realm_access": {"roles": "astrago-admin"}}
    identity = identity_from(not_strings, ISSUER, RoleMapping())
    assert identity.workspaces == {}
    assert identity.admin is True  # a single string role counts as a list of one


def test_claim_paths_and_usernames() -> None:
    assert claim_at({"a.b": 1, "a": {"b": 2}}, "a.b") == 1  # a dotted client id stays one key
    assert claim_at({"a": {"b": 2}}, "a.b") == 2
    assert claim_at({"a": []}, "a.b") is None
    assert username_from({"sub": "x", "email": "kim j@example.org"}) == "kim-j-example.org"
    assert username_from({"sub": "abc"}) == "abc"
