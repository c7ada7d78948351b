"""The gateway's use cases: who may reach a workload's port, where it answers, and the browser handshake.

Access follows the workspace: a workload of a workspace the caller cannot see is answered 404, exactly as
if it did not exist (ids and names do not leak). An interactive workload is a shell in disguise (a
notebook runs any code), so reaching one takes a member's role; a service or any other port, a viewer's.

A browser cannot send a bearer header when it navigates, so a caller that holds a token asks for a
*ticket* (`open_url`): signed, bound to one workload, valid 60 s and once. The gateway exchanges it for a
proxy cookie (HttpOnly, scoped to `/proxy/<workload>/`, 12 h) and redirects to the same URL without it.
The workload never sees the ticket, the cookie, or the caller's token: the gateway strips them."""

from __future__ import annotations

import hashlib
import itertools
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from pydantic import BaseModel

from astrago.auth.principal import Principal
from astrago.backends.base import Backend, Capability, Endpoint
from astrago.domain.endpoints import proxy_path
from astrago.domain.enums import WorkloadKind, WorkloadStatus, WorkspaceRole
from astrago.domain.status import TERMINAL_STATUSES
from astrago.gateway.signing import ProxyGrant, SignedValueError, Signer
from astrago.services.context import ServiceContext
from astrago.services.errors import Conflict, Forbidden, NotFound, NotSupported, Unauthenticated, Unavailable
from astrago.store.repositories import UserRepository, WorkloadRepository, WorkspaceRepository

TICKET_TTL_S = 60.0
# A page load is dozens of requests: who may reach a workload, and who holds a cookie, are looked up once
# per this long (a revoked account or a finished workload is refused at most this much later).
LOOKUP_CACHE_S = 2.0
COOKIE_TTL_S = 12 * 3600.0
COOKIE_NAME = "astrago_proxy"
TICKET_PARAM = "astrago_ticket"


class EndpointOut(BaseModel):
    port: int
    path: str  # the gateway path, relative to the server's URL
    ready: bool
    replicas_ready: int
    replicas: int


class OpenUrlOut(BaseModel):
    url: str  # relative to the server's URL; carries a one-time ticket valid for 60 s
    expires_in_s: float


@dataclass(frozen=True, slots=True)
class _Target:
    ports: list[int]
    kind: WorkloadKind
    workspace_id: str
    status: WorkloadStatus


@dataclass(frozen=True, slots=True)
class Upstream:
    """Where one proxied request goes."""

    workload_id: str
    port: int
    host: str
    target_port: int
    authorization: str | None  # what the gateway presents to the app (a notebook's token)
    keeps_prefix: bool  # the app serves under the gateway path itself (JupyterLab's base_url)


class GatewayService:
    def __init__(self, ctx: ServiceContext, backend: Backend, signer: Signer) -> None:
        self.ctx = ctx
        self.backend = backend
        self.signer = signer
        self._used_nonces: dict[str, float] = {}
        self._targets: dict[str, tuple[float, _Target | None]] = {}
        self._cookie_principals: dict[str, tuple[float, Principal]] = {}
        self._bearer_principals: dict[str, tuple[float, Principal]] = {}
        self._round_robin: dict[tuple[str, int], itertools.count[int]] = {}

    # -- who is calling ---------------------------------------------------------------------------

    async def principal_from_cookie(self, value: str, workload_id: str) -> Principal:
        try:
            grant = self.signer.verify(value, "cookie", workload_id)
        except SignedValueError:
            raise Unauthenticated(
                "the proxy session is not valid or has expired; open the workload again"
            ) from None
        now = time.monotonic()
        cached = self._cookie_principals.get(value)
        if cached is not None and cached[0] > now:
            return cached[1]
        principal = await self._active_principal(grant.user_id)
        if len(self._cookie_principals) > 10_000:
            self._cookie_principals.clear()
        self._cookie_principals[value] = (now + LOOKUP_CACHE_S, principal)
        return principal

    async def cached_principal(
        self, token: str, authenticate: Callable[[], Awaitable[Principal]]
    ) -> Principal:
        """The caller behind a bearer token, looked up at most every LOOKUP_CACHE_S per token."""
        key = hashlib.sha256(token.encode()).hexdigest()
        now = time.monotonic()
        cached = self._bearer_principals.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        principal = await authenticate()
        if len(self._bearer_principals) > 10_000:
            self._bearer_principals.clear()
        self._bearer_principals[key] = (now + LOOKUP_CACHE_S, principal)
        return principal

    async def exchange_ticket(self, ticket: str, workload_id: str) -> tuple[Principal, str]:
        """A valid, unused ticket becomes a cookie value; every ticket works once."""
        try:
            grant = self.signer.verify(ticket, "ticket", workload_id)
        except SignedValueError:
            raise Unauthenticated("this link is not valid or has expired; open the workload again") from None
        now = time.time()
        self._used_nonces = {n: exp for n, exp in self._used_nonces.items() if exp > now}
        if grant.nonce in self._used_nonces:
            raise Unauthenticated("this link was already used; open the workload again")
        self._used_nonces[grant.nonce] = grant.expires_at
        principal = await self._active_principal(grant.user_id)
        cookie = self.signer.sign(self._grant("cookie", principal, workload_id, COOKIE_TTL_S))
        return principal, cookie

    async def _active_principal(self, user_id: str) -> Principal:
        async with self.ctx.read() as session:
            user = await UserRepository(session).get(user_id)
            if user is None or not user.active:
                raise Unauthenticated("the account behind this proxy session is disabled or gone")
            memberships = await WorkspaceRepository(session).memberships_of_user(user.id)
            roles = {m.workspace_id: WorkspaceRole(m.role) for m in memberships}
            return Principal(user_id=user.id, username=user.username, is_admin=user.is_admin, roles=roles)

    @staticmethod
    def _grant(purpose: str, principal: Principal, workload_id: str, ttl_s: float) -> ProxyGrant:
        return ProxyGrant(
            purpose=purpose,
            user_id=principal.user_id,
            workload_id=workload_id,
            expires_at=time.time() + ttl_s,
            nonce=secrets.token_urlsafe(12),
        )

    # -- what they may reach ----------------------------------------------------------------------

    async def endpoints(self, principal: Principal, workload_id: str) -> list[EndpointOut]:
        target = await self._accessible(principal, workload_id)
        found = await self._backend_endpoints(workload_id)
        return [
            EndpointOut(
                port=port,
                path=proxy_path(workload_id, port),
                ready=any(e.ready for e in found if e.port == port),
                replicas_ready=sum(1 for e in found if e.port == port and e.ready),
                replicas=sum(1 for e in found if e.port == port),
            )
            for port in target.ports
        ]

    async def open_url(self, principal: Principal, workload_id: str, port: int) -> OpenUrlOut:
        await self._reachable(principal, workload_id, port)
        ticket = self.signer.sign(self._grant("ticket", principal, workload_id, TICKET_TTL_S))
        return OpenUrlOut(
            url=f"{proxy_path(workload_id, port)}?{TICKET_PARAM}={ticket}", expires_in_s=TICKET_TTL_S
        )

    async def upstream(self, principal: Principal, workload_id: str, port: int) -> Upstream:
        """Where to send a request for `port` of the workload: a ready replica, in turn."""
        await self._reachable(principal, workload_id, port)
        ready = [e for e in await self._backend_endpoints(workload_id) if e.port == port and e.ready]
        if not ready:
            raise Unavailable(f"workload {workload_id} is not ready on port {port} yet; retry shortly")
        turn = next(self._round_robin.setdefault((workload_id, port), itertools.count()))
        chosen: Endpoint = ready[turn % len(ready)]
        return Upstream(
            workload_id=workload_id,
            port=port,
            host=chosen.host,
            target_port=chosen.target_port,
            authorization=chosen.upstream_authorization,
            keeps_prefix=chosen.keeps_prefix,
        )

    async def _accessible(self, principal: Principal, workload_id: str) -> _Target:
        target = await self._target(workload_id)
        if target is None or not principal.can(target.workspace_id, WorkspaceRole.VIEWER):
            raise NotFound(f"workload {workload_id!r} does not exist or is not in one of your workspaces")
        if target.status in TERMINAL_STATUSES:
            raise Conflict(f"workload {workload_id} has ended ({target.status.value}); nothing answers there")
        return target

    async def _target(self, workload_id: str) -> _Target | None:
        now = time.monotonic()
        cached = self._targets.get(workload_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        async with self.ctx.read() as session:
            workload = await WorkloadRepository(session).get(workload_id)
            target = None
            if workload is not None:
                ports = list(workload.spec.get("ports") or ())
                status = WorkloadStatus(workload.status)
                target = _Target(ports, WorkloadKind(workload.kind), workload.workspace_id, status)
        if len(self._targets) > 10_000:
            self._targets.clear()
        self._targets[workload_id] = (now + LOOKUP_CACHE_S, target)
        return target

    async def _reachable(self, principal: Principal, workload_id: str, port: int) -> None:
        target = await self._accessible(principal, workload_id)
        if target.kind is WorkloadKind.INTERACTIVE and not principal.can(
            target.workspace_id, WorkspaceRole.MEMBER
        ):
            raise Forbidden(f"workload {workload_id} runs code for whoever uses it: it takes a member's role")
        if port not in target.ports:
            listed = ", ".join(str(p) for p in target.ports) or "none"
            raise NotFound(f"workload {workload_id} does not expose port {port} (its ports: {listed})")

    async def _backend_endpoints(self, workload_id: str) -> list[Endpoint]:
        if not self.backend.capabilities.supports(Capability.ENDPOINTS):
            raise NotSupported(
                f"the {self.backend.name} backend cannot report endpoints",
                backend=self.backend.name,
                missing=[Capability.ENDPOINTS.value],
            )
        return await self.backend.endpoints(workload_id)
