"""`Client`: one method per API operation, typed with the API's own request and response models."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, TypeAdapter

from astrago.client.config import ClientConfig
from astrago.client.errors import ApiError, ServerUnreachable
from astrago.domain.audit import AuditFilter
from astrago.domain.enums import WorkloadStatus
from astrago.monitor.schemas import TopListing, WorkloadGpuUsage
from astrago.services.schemas import (
    AuditOut,
    CodeBundleOut,
    CordonIn,
    CordonOut,
    EventOut,
    LogoutOut,
    MemberOut,
    NodeOut,
    QuotaOut,
    QuotaSet,
    SsoConfigOut,
    SsoTokenIn,
    TokenOut,
    UncordonIn,
    UncordonOut,
    UserOut,
    WorkloadOut,
    WorkloadPageOut,
    WorkloadSubmit,
    WorkspaceDefaultsOut,
    WorkspaceDefaultsSet,
    WorkspaceOut,
)
from astrago.services.usage_schemas import UsageReport

DEFAULT_URL = "http://127.0.0.1:8080"


@dataclass(frozen=True, slots=True)
class UsageParams:
    """A usage report's query: `start`/`end` are days (whole days, `end` included) or ISO instants."""

    workspace: str | None = None
    start: str | None = None
    end: str | None = None
    by: str = "workspace"
    time_zone: str | None = None

    def params(self) -> dict[str, str]:
        given = {"workspace": self.workspace, "from": self.start, "to": self.end, "by": self.by}
        given["tz"] = self.time_zone
        return {key: value for key, value in given.items() if value is not None}


TERMINAL_STATUSES = frozenset({WorkloadStatus.SUCCEEDED, WorkloadStatus.FAILED, WorkloadStatus.CANCELLED})
Model = TypeVar("Model")


class Client:
    """A connection to one AstraGo server as one user (a bearer token; `login` gets one)."""

    def __init__(
        self, url: str = DEFAULT_URL, token: str | None = None, timeout: float = 30.0, **httpx_options: Any
    ) -> None:
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout, **httpx_options)

    @classmethod
    def from_environment(cls) -> Client:
        """`ASTRAGO_URL` and `ASTRAGO_TOKEN`, else what `astrago login` saved, else the local default."""
        config = ClientConfig.load()
        url = os.environ.get("ASTRAGO_URL") or config.url or DEFAULT_URL
        return cls(url, os.environ.get("ASTRAGO_TOKEN") or config.token)

    @property
    def has_token(self) -> bool:
        return "Authorization" in self.http.headers

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- transport -----------------------------------------------------------------------------------------

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """One request; the decoded JSON answer (None for 204). Raises ApiError or ServerUnreachable."""
        with self._errors():
            response = self.http.request(method, path, **kwargs)
        raise_for_problem(response)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def _typed(self, model: type[Model] | Any, method: str, path: str, **kwargs: Any) -> Model:
        return TypeAdapter(model).validate_python(self.request(method, path, **kwargs))

    @contextmanager
    def stream(self, path: str, params: dict[str, Any]) -> Iterator[Iterator[bytes]]:
        with self._errors(), self.http.stream("GET", path, params=params, timeout=None) as response:
            if response.status_code >= 400:
                response.read()
                raise_for_problem(response)
            yield response.iter_raw()

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except httpx.ConnectError as exc:
            raise ServerUnreachable(
                self.url, f"cannot reach the AstraGo server at {self.url} ({exc})"
            ) from exc
        except httpx.TimeoutException as exc:
            raise ServerUnreachable(self.url, f"the server at {self.url} did not answer in time") from exc
        except httpx.HTTPError as exc:
            raise ServerUnreachable(self.url, f"talking to {self.url} failed: {exc}") from exc

    # -- accounts ------------------------------------------------------------------------------------------

    def login(self, username: str, password: str) -> TokenOut:
        """A short-lived session token (use it with `Client(url, token)`)."""
        body = {"username": username, "password": password}
        return self._typed(TokenOut, "POST", "/api/v1/auth/login", json=body)

    def me(self) -> UserOut:
        return self._typed(UserOut, "GET", "/api/v1/auth/me")

    def logout(self) -> LogoutOut:
        """End this client's session; for SSO sessions `logout_url` ends the IdP's session too."""
        return self._typed(LogoutOut, "POST", "/api/v1/auth/logout")

    def change_password(self, current_password: str, new_password: str) -> None:
        body = {"current_password": current_password, "new_password": new_password}
        self.request("POST", "/api/v1/auth/password", json=body)

    def create_token(
        self, name: str, expires_in_days: int | None = None, read_only: bool = False
    ) -> TokenOut:
        """An API token (its secret only in this answer); 90 days unless `expires_in_days` says otherwise."""
        body: dict[str, Any] = {"name": name, "read_only": read_only}
        if expires_in_days is not None:
            body["expires_in_days"] = expires_in_days
        return self._typed(TokenOut, "POST", "/api/v1/auth/tokens", json=body)

    def tokens(self, everyone: bool = False) -> list[TokenOut]:
        """Live API tokens and login sessions: yours, or everyone's (admins)."""
        return self._typed(list[TokenOut], "GET", "/api/v1/auth/tokens", params={"all": everyone})

    def revoke_token(self, token_id: str) -> None:
        self.request("DELETE", f"/api/v1/auth/tokens/{token_id}")

    def set_user_active(self, username: str, active: bool) -> UserOut:
        """Disable (sessions and tokens revoked) or enable an account (admins)."""
        return self._typed(UserOut, "PATCH", f"/api/v1/users/{username}", json={"active": active})

    def delete_user(self, username: str) -> None:
        self.request("DELETE", f"/api/v1/users/{username}")

    def sso_config(self) -> SsoConfigOut:
        return self._typed(SsoConfigOut, "GET", "/api/v1/auth/oidc/config")

    def sso_session(self, tokens: SsoTokenIn) -> TokenOut:
        """An AstraGo session for tokens the IdP gave this client (device grant or loopback sign-in)."""
        return self._typed(TokenOut, "POST", "/api/v1/auth/oidc/token", json=tokens.model_dump())

    def users(self) -> list[UserOut]:
        return self._typed(list[UserOut], "GET", "/api/v1/users")

    def create_user(self, username: str, password: str, admin: bool = False) -> UserOut:
        body = {"username": username, "password": password, "admin": admin}
        return self._typed(UserOut, "POST", "/api/v1/users", json=body)

    # -- workspaces and quotas -----------------------------------------------------------------------------

    def workspaces(self) -> list[WorkspaceOut]:
        return self._typed(list[WorkspaceOut], "GET", "/api/v1/workspaces")

    def workspace(self, name: str) -> WorkspaceOut:
        return self._typed(WorkspaceOut, "GET", f"/api/v1/workspaces/{name}")

    def create_workspace(self, name: str, description: str = "") -> WorkspaceOut:
        body = {"name": name, "description": description}
        return self._typed(WorkspaceOut, "POST", "/api/v1/workspaces", json=body)

    def delete_workspace(self, name: str) -> None:
        self.request("DELETE", f"/api/v1/workspaces/{name}")

    def set_member(self, workspace: str, username: str, role: str) -> MemberOut:
        body = {"username": username, "role": role}
        return self._typed(MemberOut, "PUT", f"/api/v1/workspaces/{workspace}/members", json=body)

    def remove_member(self, workspace: str, username: str) -> None:
        self.request("DELETE", f"/api/v1/workspaces/{workspace}/members/{username}")

    def quota(self, workspace: str) -> QuotaOut:
        return self._typed(QuotaOut, "GET", f"/api/v1/workspaces/{workspace}/quota")

    def set_quota(self, workspace: str, change: QuotaSet) -> QuotaOut:
        body = change.model_dump(exclude_none=True)
        return self._typed(QuotaOut, "PUT", f"/api/v1/workspaces/{workspace}/quota", json=body)

    def workspace_defaults(self, workspace: str) -> WorkspaceDefaultsOut:
        return self._typed(WorkspaceDefaultsOut, "GET", f"/api/v1/workspaces/{workspace}/defaults")

    def set_workspace_defaults(self, workspace: str, defaults: WorkspaceDefaultsSet) -> WorkspaceDefaultsOut:
        body = defaults.model_dump(exclude_none=True)
        return self._typed(WorkspaceDefaultsOut, "PUT", f"/api/v1/workspaces/{workspace}/defaults", json=body)

    # -- workloads -----------------------------------------------------------------------------------------

    def submit(self, spec: WorkloadSubmit | dict[str, Any]) -> WorkloadOut:
        """Submit a workload. A dict is sent as it is (the server validates it and says what is wrong)."""
        body = spec.model_dump(exclude_unset=True) if isinstance(spec, BaseModel) else spec
        return self._typed(WorkloadOut, "POST", "/api/v1/workloads", json=body)

    def workloads(
        self,
        workspace: str | None = None,
        states: Sequence[WorkloadStatus | str] | None = None,
        limit: int = 50,
        cursor: int | None = None,
    ) -> WorkloadPageOut:
        params: dict[str, Any] = {"limit": limit}
        if workspace:
            params["workspace"] = workspace
        if states:
            params["state"] = [str(s) for s in states]
        if cursor is not None:
            params["cursor"] = cursor
        return self._typed(WorkloadPageOut, "GET", "/api/v1/workloads", params=params)

    def workload(self, workload_id: str) -> WorkloadOut:
        return self._typed(WorkloadOut, "GET", f"/api/v1/workloads/{workload_id}")

    def events(self, workload_id: str) -> list[EventOut]:
        return self._typed(list[EventOut], "GET", f"/api/v1/workloads/{workload_id}/events")

    def cancel(self, workload_id: str) -> WorkloadOut:
        return self._typed(WorkloadOut, "POST", f"/api/v1/workloads/{workload_id}/cancel")

    def wait(self, workload_id: str, timeout: float | None = None, poll_s: float = 1.0) -> WorkloadOut:
        """Block until the workload has ended; its final state. TimeoutError past `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            workload = self.workload(workload_id)
            if workload.status in TERMINAL_STATUSES:
                return workload
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"workload {workload_id} is still {workload.status} after {timeout:g} s")
            time.sleep(poll_s)

    @contextmanager
    def log_stream(
        self, workload_id: str, replica: int = 0, follow: bool = False
    ) -> Iterator[Iterator[bytes]]:
        """A replica's output as it arrives (the one place that reads logs, so the transport can change)."""
        params = {"replica": replica, "follow": str(follow).lower()}
        with self.stream(f"/api/v1/workloads/{workload_id}/logs", params) as chunks:
            yield chunks

    def logs(self, workload_id: str, replica: int = 0) -> str:
        """A replica's output so far, as text."""
        with self.log_stream(workload_id, replica) as chunks:
            return b"".join(chunks).decode(errors="replace")

    # -- code ---------------------------------------------------------------------------------------------

    def upload_code(self, archive: Path) -> CodeBundleOut:
        """Upload a gzip'd tar (see `astrago.client.bundle.pack_directory`); refer to it as `code` in a
        WorkloadSubmit. Streamed from disk, never read into memory."""

        def chunks() -> Iterator[bytes]:
            with archive.open("rb") as handle:
                while chunk := handle.read(1024 * 1024):
                    yield chunk

        headers = {"Content-Type": "application/gzip"}
        return self._typed(CodeBundleOut, "POST", "/api/v1/code-bundles", content=chunks(), headers=headers)

    # -- the platform --------------------------------------------------------------------------------------

    def gpu_usage(
        self,
        workload_id: str,
        since: datetime | None = None,
        until: datetime | None = None,
        step_s: int | None = None,
    ) -> WorkloadGpuUsage:
        params = {
            key: value
            for key, value in (
                ("since", since.isoformat() if since else None),
                ("until", until.isoformat() if until else None),
                ("step", step_s),
            )
            if value is not None
        }
        return self._typed(
            WorkloadGpuUsage, "GET", f"/api/v1/workloads/{workload_id}/gpu-usage", params=params
        )

    def top(self) -> TopListing:
        return self._typed(TopListing, "GET", "/api/v1/top")

    def nodes(self) -> list[NodeOut]:
        return self._typed(list[NodeOut], "GET", "/api/v1/nodes")

    def cordon(self, node: str, gpu: int | None = None, reason: str | None = None) -> CordonOut:
        body = CordonIn(gpu=gpu, reason=reason).model_dump(exclude_none=True)
        return self._typed(CordonOut, "POST", f"/api/v1/nodes/{quote(node, safe='')}/cordon", json=body)

    def uncordon(self, node: str, gpu: int | None = None) -> UncordonOut:
        body = UncordonIn(gpu=gpu).model_dump(exclude_none=True)
        return self._typed(UncordonOut, "POST", f"/api/v1/nodes/{quote(node, safe='')}/uncordon", json=body)

    def audit(
        self, limit: int = 50, before: int | None = None, matching: AuditFilter | None = None
    ) -> list[AuditOut]:
        """The newest records matching the filter (searched by the server), older than `before`."""
        params: dict[str, str | int] = {"limit": limit}
        if before is not None:
            params["before"] = before
        if matching is not None:
            for name, value in vars(matching).items():
                if isinstance(value, datetime):
                    params[name] = value.isoformat()
                elif value is not None:
                    params[name] = str(value)
        return self._typed(list[AuditOut], "GET", "/api/v1/audit", params=params)

    # -- the usage ledger ----------------------------------------------------------------------------------

    def usage(self, query: UsageParams) -> UsageReport:
        """GPU-hours allocated and used, CPU-core-hours and memory over a window (see `UsageParams`)."""
        return self._typed(UsageReport, "GET", "/api/v1/usage", params=query.params())

    def usage_csv(self, query: UsageParams) -> str:
        with self._errors():
            response = self.http.get("/api/v1/usage", params={**query.params(), "format": "csv"})
        raise_for_problem(response)
        return response.text


def raise_for_problem(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and "detail" in body:
        errors = body.get("errors") if isinstance(body.get("errors"), list) else None
        raise ApiError(response.status_code, str(body.get("title", "")), str(body["detail"]), errors)
    text = response.text[:300] if body is None else str(body)
    raise ApiError(
        response.status_code, response.reason_phrase, f"the server answered {response.status_code}: {text}"
    )
