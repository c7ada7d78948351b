"""Who may call each API route: the rule table of the authorization matrix (test_authorization_matrix.py).

Every route the app serves must have a rule here; a new route without one fails the matrix test. To add
yours: one `RULES` entry keyed by (METHOD, path as declared), saying which personas succeed and with what
status, what the others get, and (if needed) how to build the request: path parameters are filled from
`Targets` (add a target for a new parameter name), bodies and query strings from `request`.

Routes of a workspace or a workload answer 404 to signed-in users outside that workspace, as if it did
not exist (its name does not leak); those inside it who lack the role get 403.

Personas (all in a fresh server): `admin` (platform admin), `manager`, `member`, `viewer` (of workspace
ml-a), `outsider` (manager of workspace ml-b only), `anonymous` (no credentials). Anonymous callers get 401
on every route that is not `public`.

How a cell is called depends on the route: plain HTTP routes with one request; streams (server-sent
events) by their status line and headers, closed before the body; WebSocket routes by their handshake,
101 when accepted, else the HTTP status of the refusal; the console's asset mount with a GET of a built
asset. Some statuses are not 2xx for those who pass: a queued workload has no log yet (409), a queued
service has no ready replica behind the gateway (503), a queued service cannot roll (409). What matters
is that those who may not get 401/403/404 and those who may get past authorization."""

from __future__ import annotations

import base64
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
SERVICE_PORT = 8000
SERVICE = {**JOB, "kind": "service", "ports": [SERVICE_PORT]}  # queued too: no replica is ready
SHARED_VOLUME = "shared"  # a volume of ml-a holding SHARED_FILE
SHARED_FILE = "hello.txt"
UPLOAD_LENGTH = 5
TUS = {"Tus-Resumable": "1.0.0"}


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
    def running(self) -> str: ...  # the admin's running job in ml-a (it holds the node's cores)
    def service(self) -> str: ...  # a queued service of the admin in ml-a exposing port SERVICE_PORT
    def asset(self) -> str: ...  # the name of a built console asset
    def volume(self) -> str: ...  # a new, empty volume of the admin in ml-a
    def upload(self) -> str: ...  # an unfinished upload (UPLOAD_LENGTH bytes, none sent) into SHARED_VOLUME
    def channel(self) -> str: ...  # a new notification channel (a webhook nobody listens to)
    def subscription(self) -> str: ...  # a new subscription of a new channel to every alert
    def idle_policy(self) -> str: ...  # the kind of an idle reclaim policy the admin set for every workspace


@dataclass(frozen=True)
class Call:
    json: Any = None
    params: Mapping[str, Any] | None = None
    content: bytes | None = None  # a raw body (with `content_type`) instead of JSON
    content_type: str | None = None
    fresh_session: bool = False  # call with a new login session of the persona (the call ends it)
    stream: bool = False  # an event stream: its status and headers, not its endless body
    headers: Mapping[str, str] | None = None
    suffix: str = ""  # appended to the path (the asset mount's file)


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


def _stream(_t: Targets, _p: str) -> Call:
    return Call(stream=True)


def tus_metadata(path: str) -> str:
    return "filename " + base64.b64encode(path.encode()).decode()


def _new_upload(t: Targets, _p: str) -> Call:
    """TUS creation of a file in the volume (its bytes come later)."""
    headers = {**TUS, "Upload-Length": str(UPLOAD_LENGTH), "Upload-Metadata": tus_metadata(t.unique("f"))}
    return Call(headers=headers)


def _upload_chunk(_t: Targets, _p: str) -> Call:
    """The whole of an upload's bytes, from offset 0."""
    headers = {**TUS, "Upload-Offset": "0"}
    return Call(content=b"x" * UPLOAD_LENGTH, content_type="application/offset+octet-stream", headers=headers)


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
    # cordon one GPU (the node's only one): every workload stays queued in this server anyway
    ("POST", "/api/v1/nodes/{node}/cordon"): Rule(
        frozenset({"admin"}), request=lambda _t, _p: Call(json={"gpu": 0, "reason": "matrix"})
    ),
    ("POST", "/api/v1/nodes/{node}/uncordon"): Rule(
        frozenset({"admin"}), request=lambda _t, _p: Call(json={"gpu": 0})
    ),
    ("GET", "/api/v1/top"): Rule(SIGNED_IN),  # lists only the workloads the caller may see
    ("GET", "/api/v1/audit"): Rule(frozenset({"admin"})),
    # the usage report of one workspace; without `workspace` everyone gets the workspaces they may see
    ("GET", "/api/v1/usage"): Rule(
        IN_ML_A, refused=_outsider_sees_nothing(), request=lambda _t, _p: Call(params={"workspace": "ml-a"})
    ),
    ("GET", "/api/v1/system"): Rule(SIGNED_IN),
    # -- live streams: the status comes before the endless body ---------------------------------------------
    ("GET", "/api/v1/events/stream"): Rule(SIGNED_IN, request=_stream),
    ("GET", "/api/v1/workloads/{workload_id}/logs/stream"): Rule(
        IN_ML_A, refused=_outsider_sees_nothing(), request=_stream
    ),
    # -- a command inside a running replica (WebSocket): a member's role; the handshake is the answer ------
    ("WEBSOCKET", "/api/v1/workloads/{workload_id}/exec"): Rule(
        frozenset({"member", "manager", "admin"}),
        ok=101,
        refused=_outsider_sees_nothing(),
        request=lambda _t, _p: Call(params={"command": "true"}),
    ),
    # -- services: their endpoints, the gateway's one-time links, rolling to a new revision ---------------
    ("GET", "/api/v1/workloads/{workload_id}/endpoints"): Rule(IN_ML_A, refused=_outsider_sees_nothing()),
    ("POST", "/api/v1/workloads/{workload_id}/endpoints/{port}/open"): Rule(
        IN_ML_A, refused=_outsider_sees_nothing()
    ),
    # the admin's service: others need a manager's role; it is queued, so those who may hear 409
    ("POST", "/api/v1/workloads/{workload_id}/rollout"): Rule(
        frozenset({"manager", "admin"}),
        ok=409,
        refused=_outsider_sees_nothing(),
        request=lambda _t, _p: Call(json={"command": ["sleep", "700"]}),
    ),
    # -- the gateway to a service's port: viewers may use a (non-interactive) service; queued: 503 ---------
    # without the trailing slash it only redirects to the path with it, which then authenticates
    **{
        (method, "/proxy/{workload_id}/{port}"): _everyone(308)
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
    },
    **{
        (method, "/proxy/{workload_id}/{port}/{rest:path}"): Rule(
            IN_ML_A, ok=503, refused=_outsider_sees_nothing()
        )
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
    },
    ("WEBSOCKET", "/proxy/{workload_id}/{port}/{rest:path}"): Rule(
        IN_ML_A, ok=503, refused=_outsider_sees_nothing()
    ),
    # -- volumes: viewers read, members write, deleting is for its creator or a manager ------------------
    ("GET", "/api/v1/workspaces/{workspace}/volumes"): Rule(IN_ML_A, refused=_outsider_sees_nothing()),
    ("POST", "/api/v1/workspaces/{workspace}/volumes"): Rule(
        frozenset({"member", "manager", "admin"}),
        ok=201,
        refused=_outsider_sees_nothing(),
        request=lambda t, _p: Call(json={"name": t.unique("vol")}),
    ),
    ("GET", "/api/v1/workspaces/{workspace}/volumes/{name}"): Rule(IN_ML_A, refused=_outsider_sees_nothing()),
    ("PATCH", "/api/v1/workspaces/{workspace}/volumes/{name}"): Rule(
        frozenset({"member", "manager", "admin"}),
        refused=_outsider_sees_nothing(),
        request=lambda _t, p: Call(json={"description": f"edited by {p}"}),
    ),
    ("DELETE", "/api/v1/workspaces/{workspace}/volumes/{name}"): Rule(
        frozenset({"manager", "admin"}), ok=204, refused=_outsider_sees_nothing()
    ),
    ("GET", "/api/v1/workspaces/{workspace}/volumes/{name}/files"): Rule(
        IN_ML_A, refused=_outsider_sees_nothing()
    ),
    ("GET", "/api/v1/workspaces/{workspace}/volumes/{name}/download"): Rule(
        IN_ML_A, refused=_outsider_sees_nothing(), request=lambda _t, _p: Call(params={"path": SHARED_FILE})
    ),
    # -- uploads (TUS): members of the volume's workspace; for anyone else an upload does not exist ---------
    ("OPTIONS", "/api/v1/uploads"): _everyone(204),  # TUS discovery: what the server supports
    ("OPTIONS", "/api/v1/uploads/{upload_id}"): _everyone(204),
    ("OPTIONS", "/api/v1/workspaces/{workspace}/volumes/{name}/uploads"): _everyone(204),
    ("POST", "/api/v1/workspaces/{workspace}/volumes/{name}/uploads"): Rule(
        frozenset({"member", "manager", "admin"}),
        ok=201,
        refused=_outsider_sees_nothing(),
        request=_new_upload,
    ),
    ("HEAD", "/api/v1/uploads/{upload_id}"): Rule(
        frozenset({"member", "manager", "admin"}),
        refused={"viewer": 404, "outsider": 404},
        request=lambda _t, _p: Call(headers=TUS),
    ),
    ("PATCH", "/api/v1/uploads/{upload_id}"): Rule(
        frozenset({"member", "manager", "admin"}),
        ok=204,
        refused={"viewer": 404, "outsider": 404},
        request=_upload_chunk,
    ),
    ("DELETE", "/api/v1/uploads/{upload_id}"): Rule(
        frozenset({"member", "manager", "admin"}),
        ok=204,
        refused={"viewer": 404, "outsider": 404},
        request=lambda _t, _p: Call(headers=TUS),
    ),
    # -- alerts and idle reclaim ---------------------------------------------------------------------------
    ("GET", "/api/v1/alerts"): Rule(SIGNED_IN),
    ("GET", "/api/v1/alert-channels"): Rule(frozenset({"admin"})),
    ("POST", "/api/v1/alert-channels"): Rule(
        frozenset({"admin"}),
        ok=201,
        request=lambda t, _p: Call(
            json={"name": t.unique("ch"), "kind": "webhook", "target": "http://127.0.0.1:9/hook"}
        ),
    ),
    ("GET", "/api/v1/alert-subscriptions"): Rule(frozenset({"admin"})),
    ("GET", "/api/v1/alert-deliveries"): Rule(frozenset({"admin"})),
    ("GET", "/api/v1/alert-rules"): Rule(frozenset({"admin"})),
    ("PATCH", "/api/v1/alert-rules/{rule}"): Rule(
        frozenset({"admin"}), request=lambda _t, _p: Call(json={"for_s": 1800})
    ),
    ("GET", "/api/v1/idle-policies"): Rule(SIGNED_IN),
    ("PUT", "/api/v1/idle-policies"): Rule(
        frozenset({"admin"}), request=lambda _t, _p: Call(json={"kind": "service", "enabled": False})
    ),
    ("GET", "/api/v1/workloads/{workload_id}/reclaim"): Rule(IN_ML_A, refused=_outsider_sees_nothing()),
    # a queued workload has no reclaim to postpone: those who may keep it hear 409, the others 403/404
    ("POST", "/api/v1/workloads/{workload_id}/keep"): Rule(
        frozenset({"manager", "admin"}), ok=409, refused=_outsider_sees_nothing()
    ),
    # a fresh server has no alert: resolving one is a 404 for everyone (its existence never leaks); who may
    # resolve a real one is checked in tests/integration/monitor/test_alert_notifications.py
    ("POST", "/api/v1/alerts/{alert_id}/resolve"): Rule(frozenset(), refused={p: 404 for p in SIGNED_IN}),
    ("DELETE", "/api/v1/alert-channels/{channel}"): Rule(frozenset({"admin"}), ok=204),
    ("POST", "/api/v1/alert-subscriptions"): Rule(
        frozenset({"admin"}), ok=201, request=lambda t, _p: Call(json={"channel": t.channel(), "all": True})
    ),
    ("DELETE", "/api/v1/alert-subscriptions/{subscription_id}"): Rule(frozenset({"admin"}), ok=204),
    ("DELETE", "/api/v1/idle-policies/{kind}"): Rule(frozenset({"admin"}), ok=204),
    # -- the web console: its pages and assets are public; the API behind them is not --------------------
    ("GET", "/{path:path}"): _everyone(),
    ("MOUNT", "/assets"): _everyone(request=lambda t, _p: Call(suffix="/" + t.asset())),
}

# Path parameters: which target fills each name (the workspace routes act on ml-a, except DELETE, which
# gets an empty workspace of its own: see `path_value`).
PATH_TARGETS: dict[str, Callable[[Targets], str]] = {
    "workload_id": lambda t: t.workload(),
    "username": lambda t: t.user(),
    "token_id": lambda t: t.member_token(),
    "bundle_id": lambda t: t.member_bundle(),
    "name": lambda _t: "ml-a",
    "rule": lambda _t: "workload-pending",
    "path": lambda _t: "workloads",  # a console page
    "port": lambda _t: str(SERVICE_PORT),
    "workspace": lambda _t: "ml-a",
    "upload_id": lambda t: t.upload(),
    "rest": lambda _t: "index.html",
    "node": lambda _t: socket.gethostname(),  # the local backend's one node
    "alert_id": lambda _t: "999999",
    "channel": lambda t: t.channel(),
    "subscription_id": lambda t: t.subscription(),
    "kind": lambda t: t.idle_policy(),
}
# Routes about a service's ports act on a queued service; exec and the log stream on a running job.
_ON_A_SERVICE = ("/endpoints", "/rollout", "/proxy/")
_ON_A_RUNNING_JOB = ("/exec", "/logs/stream")


def path_value(method: str, path: str, parameter: str, targets: Targets) -> str:
    if parameter == "name" and "/volumes/{name}" in path:
        return targets.volume() if method == "DELETE" else SHARED_VOLUME
    if parameter == "name" and method == "DELETE" and path.endswith("{name}"):
        return targets.workspace()
    if parameter == "username" and "/members/" in path:
        return targets.ml_a_viewer()
    if parameter == "workload_id" and any(part in path for part in _ON_A_SERVICE):
        return targets.service()
    if parameter == "workload_id" and path.endswith(_ON_A_RUNNING_JOB):
        return targets.running()
    return PATH_TARGETS[parameter](targets)
