"""Who may call each API route: the rule table of the authorization matrix (test_authorization_matrix.py).

Every route the app serves must have a rule here; a new route without one fails the matrix test. To add
yours: one `RULES` entry keyed by (METHOD, path as declared), saying which personas succeed and with what
status, what the others get, and (if needed) how to build the request: path parameters are filled from
`Targets` (add a target for a new parameter name), bodies and query strings from `request`.

Routes of a workspace or a workload answer 404 to signed-in users outside that workspace, as if it did
not exist (its name does not leak); those inside it who lack the role get 403.

Personas (all in a fresh server): `admin` (platform admin), `manager`, `member`, `viewer` (of workspace
ml-a), `outsider` (manager of workspace ml-b only), `anonymous` (no credentials). Anonymous callers get 401
on every route that is not `public`."""

from __future__ import annotations

import io
import socket
import tarfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

PERSONAS = ("anonymous", "viewer", "member", "manager", "admin", "outsider")
SIGNED_IN = frozenset({"viewer", "member", "manager", "admin", "outsider"})
IN_ML_A = frozenset({"viewer", "member", "manager", "admin"})  # the admin sees every workspace
PASSWORD = "persona-password-1"  # every persona's, the admin's included
JOB = {"command": ["sleep", "600"], "resources": {"cpu": 2, "memory": "64Mi"}}  # stays queued


class Targets(Protocol):
    """Fresh objects for path parameters and bodies (each call gets its own, so that deleting or
    cancelling one does not change the next persona's answer)."""

    def unique(self, prefix: str) -> str: ...
    def workload(self) -> str: ...  # a queued workload of the admin in ml-a
    def workspace(self) -> str: ...  # an empty workspace
    def user(self) -> str: ...  # a user with no roles
    def ml_a_viewer(self) -> str: ...  # a user who is a viewer of ml-a
    def member_token(self) -> str: ...  # an API token id of `member`
    def member_bundle(self) -> str: ...  # a code bundle uploaded by `member`


@dataclass(frozen=True)
class Call:
    json: Any = None
    params: Mapping[str, Any] | None = None
    content: bytes | None = None  # a raw body (with `content_type`) instead of JSON
    content_type: str | None = None
    fresh_session: bool = False  # call with a new login session of the persona (the call ends it)


@dataclass(frozen=True)
class Rule:
    allowed: frozenset[str]  # personas whose call succeeds
    ok: int = 200  # their status
    refused: Mapping[str, int] = field(default_factory=dict)  # others' status when not 403
    public: bool = False  # no credentials needed: anonymous is treated like everyone else
    request: Callable[[Targets, str], Call] = lambda _t, _p: Call()

    def expected(self, persona: str) -> int:
        if persona == "anonymous" and not self.public:
            return 401
        if persona in self.allowed:
            return self.ok
        return self.refused.get(persona, 403)


def _everyone(ok: int = 200, **kw: Any) -> Rule:
    return Rule(allowed=frozenset(PERSONAS), ok=ok, public=True, **kw)


def _outsider_sees_nothing() -> dict[str, int]:
    """Workspace and workload routes answer 404 to those outside the workspace: its existence does not
    leak."""
    return {"outsider": 404}


def _new_workspace(t: Targets, _p: str) -> Call:
    return Call(json={"name": t.unique("ws")})


def _new_user(t: Targets, _p: str) -> Call:
    return Call(json={"username": t.unique("u"), "password": PASSWORD})


def _job(t: Targets, _p: str) -> Call:
    return Call(json={"workspace": "ml-a", **JOB})


def _code_bundle(_t: Targets, _p: str) -> Call:
    """A gzip'd tar holding one file, as `astrago run` uploads the current directory."""
    packed = io.BytesIO()
    with tarfile.open(fileobj=packed, mode="w:gz") as tar:
        data = b"print('hello')\n"
        info = tarfile.TarInfo("train.py")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return Call(content=packed.getvalue(), content_type="application/gzip")


RULES: dict[tuple[str, str], Rule] = {
    # -- public: health, metrics, documentation, signing in ------------------------------------------------
    ("GET", "/healthz"): _everyone(),
    ("GET", "/readyz"): _everyone(),
    ("GET", "/metrics"): _everyone(),
    ("GET", "/openapi.json"): _everyone(),
    ("GET", "/docs"): _everyone(),
    ("GET", "/docs/oauth2-redirect"): _everyone(),
    ("GET", "/redoc"): _everyone(),
    ("POST", "/api/v1/auth/login"): _everyone(
        request=lambda _t, p: Call(json={"username": "member", "password": PASSWORD})
    ),
    ("GET", "/api/v1/auth/oidc/config"): _everyone(),
    # SSO is off in the matrix's server: the SSO routes answer 422 to everyone (tested with an IdP elsewhere)
    ("GET", "/api/v1/auth/oidc/login"): _everyone(422),
    ("GET", "/api/v1/auth/oidc/callback"): _everyone(
        422, request=lambda _t, _p: Call(params={"code": "c", "state": "s"})
    ),
    ("POST", "/api/v1/auth/oidc/token"): _everyone(
        422, request=lambda _t, _p: Call(json={"access_token": "x"})
    ),
    # -- your own account and tokens -----------------------------------------------------------------------
    ("GET", "/api/v1/auth/me"): Rule(SIGNED_IN),
    ("POST", "/api/v1/auth/logout"): Rule(SIGNED_IN, request=lambda _t, _p: Call(fresh_session=True)),
    ("POST", "/api/v1/auth/password"): Rule(
        SIGNED_IN,
        ok=204,
        request=lambda _t, _p: Call(json={"current_password": PASSWORD, "new_password": PASSWORD}),
    ),
    ("POST", "/api/v1/auth/tokens"): Rule(SIGNED_IN, ok=201, request=lambda _t, _p: Call(json={"name": "m"})),
    ("GET", "/api/v1/auth/tokens"): Rule(SIGNED_IN),
    ("DELETE", "/api/v1/auth/tokens/{token_id}"): Rule(
        frozenset({"member", "admin"}), ok=204, refused={p: 404 for p in ("viewer", "manager", "outsider")}
    ),
    # -- users (admins) --------------------------------------------------------------------------------------
    ("POST", "/api/v1/users"): Rule(frozenset({"admin"}), ok=201, request=_new_user),
    ("GET", "/api/v1/users"): Rule(frozenset({"admin"})),
    ("PATCH", "/api/v1/users/{username}"): Rule(
        frozenset({"admin"}), request=lambda _t, _p: Call(json={"active": False})
    ),
    ("DELETE", "/api/v1/users/{username}"): Rule(frozenset({"admin"}), ok=204),
    # -- workspaces ------------------------------------------------------------------------------------------
    ("POST", "/api/v1/workspaces"): Rule(frozenset({"admin"}), ok=201, request=_new_workspace),
    ("GET", "/api/v1/workspaces"): Rule(SIGNED_IN),
    ("GET", "/api/v1/workspaces/{name}"): Rule(IN_ML_A, refused=_outsider_sees_nothing()),
    ("DELETE", "/api/v1/workspaces/{name}"): Rule(frozenset({"admin"}), ok=204),
    ("PUT", "/api/v1/workspaces/{name}/members"): Rule(
        frozenset({"manager", "admin"}),
        refused=_outsider_sees_nothing(),
        request=lambda t, _p: Call(json={"username": t.user(), "role": "viewer"}),
    ),
    ("DELETE", "/api/v1/workspaces/{name}/members/{username}"): Rule(
        frozenset({"manager", "admin"}), refused=_outsider_sees_nothing(), ok=204
    ),
    ("GET", "/api/v1/workspaces/{name}/quota"): Rule(IN_ML_A, refused=_outsider_sees_nothing()),
    ("PUT", "/api/v1/workspaces/{name}/quota"): Rule(
        frozenset({"admin"}), request=lambda _t, _p: Call(json={"gpu_limit": 4})
    ),
    ("GET", "/api/v1/workspaces/{name}/defaults"): Rule(IN_ML_A, refused=_outsider_sees_nothing()),
    ("PUT", "/api/v1/workspaces/{name}/defaults"): Rule(
        frozenset({"manager", "admin"}),
        refused=_outsider_sees_nothing(),
        request=lambda _t, _p: Call(json={"cpu": 1, "memory": "1Gi"}),
    ),
    # -- workloads -------------------------------------------------------------------------------------------
    ("POST", "/api/v1/workloads"): Rule(
        frozenset({"member", "manager", "admin"}), refused=_outsider_sees_nothing(), ok=201, request=_job
    ),
    ("GET", "/api/v1/workloads"): Rule(
        IN_ML_A, refused=_outsider_sees_nothing(), request=lambda _t, _p: Call(params={"workspace": "ml-a"})
    ),
    ("GET", "/api/v1/workloads/{workload_id}"): Rule(IN_ML_A, refused=_outsider_sees_nothing()),
    ("POST", "/api/v1/workloads/{workload_id}/cancel"): Rule(
        frozenset({"manager", "admin"}), refused=_outsider_sees_nothing()
    ),
    ("GET", "/api/v1/workloads/{workload_id}/events"): Rule(IN_ML_A, refused=_outsider_sees_nothing()),
    # a queued workload has no logs yet: those who may read them hear 409, the others 403/404
    ("GET", "/api/v1/workloads/{workload_id}/logs"): Rule(IN_ML_A, ok=409, refused=_outsider_sees_nothing()),
    ("GET", "/api/v1/workloads/{workload_id}/gpu-usage"): Rule(IN_ML_A, refused=_outsider_sees_nothing()),
    # -- code bundles (anyone signed in uploads; a workload may then refer to it) -----------------------
    ("POST", "/api/v1/code-bundles"): Rule(SIGNED_IN, ok=201, request=_code_bundle),
    # its uploader (`member` here) and admins download it; for anyone else it does not exist
    ("GET", "/api/v1/code-bundles/{bundle_id}/archive"): Rule(
        frozenset({"member", "admin"}), refused={p: 404 for p in ("viewer", "manager", "outsider")}
    ),
    # -- cluster and audit -----------------------------------------------------------------------------------
    ("GET", "/api/v1/nodes"): Rule(SIGNED_IN),
    ("GET", "/api/v1/nodes/{node}/gpu-usage"): Rule(SIGNED_IN),  # names no workload: like the node list
    ("GET", "/api/v1/top"): Rule(SIGNED_IN),  # lists only the workloads the caller may see
    ("GET", "/api/v1/audit"): Rule(frozenset({"admin"})),
    # the usage report of one workspace; without `workspace` everyone gets the workspaces they may see
    ("GET", "/api/v1/usage"): Rule(
        IN_ML_A, refused=_outsider_sees_nothing(), request=lambda _t, _p: Call(params={"workspace": "ml-a"})
    ),
    ("GET", "/api/v1/system"): Rule(SIGNED_IN),
    # -- the web console: its pages and assets are public; the API behind them is not --------------------
    ("GET", "/{path:path}"): _everyone(),
}

# Routes whose persona rules are checked by the module named, not (yet) by this matrix: streams and
# WebSockets that the matrix's one-shot requests cannot hold open, the gateway (whose upstream needs a
# running workload), and volumes and uploads (which need files on disk). Each module asserts at least that
# a caller outside the workspace gets 404 and an anonymous one 401. `test_every_route_has_a_rule` accepts
# a route listed here only if the module exists. Folding them into RULES is the next step.
_GATEWAY = "tests/integration/gateway/test_gateway.py"
_VOLUMES = "tests/integration/platform/test_volumes.py"
ELSEWHERE: dict[tuple[str, str], str] = {
    ("MOUNT", "/assets"): "tests/unit/api/test_console.py",
    ("GET", "/api/v1/events/stream"): "tests/integration/platform/test_live_events.py",
    (
        "GET",
        "/api/v1/workloads/{workload_id}/logs/stream",
    ): "tests/integration/platform/test_log_streaming.py",
    ("WEBSOCKET", "/api/v1/workloads/{workload_id}/exec"): "tests/integration/platform/test_exec.py",
    ("GET", "/api/v1/workloads/{workload_id}/endpoints"): _GATEWAY,
    ("POST", "/api/v1/workloads/{workload_id}/endpoints/{port}/open"): _GATEWAY,
    ("POST", "/api/v1/workloads/{workload_id}/rollout"): "tests/integration/gateway/test_rollout.py",
    **{
        (method, path): _GATEWAY
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
        for path in ("/proxy/{workload_id}/{port}", "/proxy/{workload_id}/{port}/{rest:path}")
    },
    ("WEBSOCKET", "/proxy/{workload_id}/{port}/{rest:path}"): _GATEWAY,
    **{
        route: _VOLUMES
        for route in (
            ("GET", "/api/v1/workspaces/{workspace}/volumes"),
            ("POST", "/api/v1/workspaces/{workspace}/volumes"),
            ("GET", "/api/v1/workspaces/{workspace}/volumes/{name}"),
            ("PATCH", "/api/v1/workspaces/{workspace}/volumes/{name}"),
            ("DELETE", "/api/v1/workspaces/{workspace}/volumes/{name}"),
            ("GET", "/api/v1/workspaces/{workspace}/volumes/{name}/files"),
            ("GET", "/api/v1/workspaces/{workspace}/volumes/{name}/download"),
            ("POST", "/api/v1/workspaces/{workspace}/volumes/{name}/uploads"),
            ("OPTIONS", "/api/v1/workspaces/{workspace}/volumes/{name}/uploads"),
            ("OPTIONS", "/api/v1/uploads"),
            ("OPTIONS", "/api/v1/uploads/{upload_id}"),
            ("PATCH", "/api/v1/uploads/{upload_id}"),
            ("DELETE", "/api/v1/uploads/{upload_id}"),
        )
    },
}

# Path parameters: which target fills each name (the workspace routes act on ml-a, except DELETE, which
# gets an empty workspace of its own: see `path_value`).
PATH_TARGETS: dict[str, Callable[[Targets], str]] = {
    "workload_id": lambda t: t.workload(),
    "username": lambda t: t.user(),
    "token_id": lambda t: t.member_token(),
    "bundle_id": lambda t: t.member_bundle(),
    "name": lambda _t: "ml-a",
    "path": lambda _t: "workloads",  # a console page
    "node": lambda _t: socket.gethostname(),  # the local backend's one node
}


def path_value(method: str, path: str, parameter: str, targets: Targets) -> str:
    if parameter == "name" and method == "DELETE" and path.endswith("{name}"):
        return targets.workspace()
    if parameter == "username" and "/members/" in path:
        return targets.ml_a_viewer()
    return PATH_TARGETS[parameter](targets)
