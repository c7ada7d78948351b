"""The authorization matrix: every route of the app × every persona, against a real server.

The routes come from the app's own route table, so a route added without a rule in
authorization_rules.RULES fails `test_every_route_has_a_rule`; each rule is then checked over HTTP for
anonymous, viewer, member, manager, admin and a member of another workspace: plain requests, event
streams (status and headers, then closed), WebSocket handshakes (accepted or refused with which status)
and the console's static assets."""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from astrago.api.app import describe_api
from astrago.api.console import BUILT_CONSOLE
from tests.integration.api.authorization_rules import (
    JOB,
    PASSWORD,
    PERSONAS,
    RULES,
    SERVICE,
    SHARED_FILE,
    SHARED_VOLUME,
    TUS,
    UPLOAD_LENGTH,
    Call,
    _code_bundle,
    path_value,
    tus_metadata,
)
from tests.support.server import ADMIN_PASSWORD, ServerProcess

HOOK = "http://127.0.0.1:9/hook"  # nobody listens: the matrix's channels are never delivered to


def _walk(routes: list[BaseRoute], prefix: str = "") -> Iterator[tuple[str, str]]:
    """(method, path) of every route, through included routers and mounts."""
    for route in routes:
        original = getattr(route, "original_router", None)
        if original is not None:  # FastAPI's included router (kept as a node in recent versions)
            context = getattr(route, "include_context", None)
            yield from _walk(original.routes, prefix + (getattr(context, "prefix", "") or ""))
        elif isinstance(route, WebSocketRoute):
            yield "WEBSOCKET", prefix + route.path
        elif isinstance(route, Route):
            methods = route.methods or {"GET"}
            if "GET" in methods:  # Starlette answers HEAD for every GET route: the GET's rule covers it
                methods = methods - {"HEAD"}
            for method in sorted(methods):
                yield method, prefix + route.path
        elif isinstance(route, Mount):
            yield "MOUNT", prefix + route.path


def app_routes() -> set[tuple[str, str]]:
    return set(_walk(describe_api().routes))


def test_every_route_has_a_rule() -> None:
    routes = app_routes()
    missing = sorted(routes - RULES.keys())
    assert not missing, (
        f"routes without an authorization rule: {missing}; add them to "
        "tests/integration/api/authorization_rules.py"
    )
    stale = sorted(RULES.keys() - routes)
    assert not stale, f"rules for routes the app no longer has: {stale}"


class Fixture:
    """One server with the six personas, and fresh targets made by the admin."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.http = httpx.Client(base_url=server.url, timeout=30)
        self.counter = itertools.count()
        self.tokens: dict[str, str] = {"admin": self.login("admin", ADMIN_PASSWORD)}
        change = {"current_password": ADMIN_PASSWORD, "new_password": PASSWORD}
        self.admin("POST", "/api/v1/auth/password", json=change)
        for name in ("viewer", "member", "manager", "outsider"):
            self.admin("POST", "/api/v1/users", json={"username": name, "password": PASSWORD})
            self.tokens[name] = self.login(name, PASSWORD)
        for workspace in ("ml-a", "ml-b"):
            self.admin("POST", "/api/v1/workspaces", json={"name": workspace})
        for name in ("viewer", "member", "manager"):
            self.admin("PUT", "/api/v1/workspaces/ml-a/members", json={"username": name, "role": name})
        self.admin("PUT", "/api/v1/workspaces/ml-b/members", json={"username": "outsider", "role": "manager"})
        # A running job that holds the node's cores, so that the targets' workloads stay queued; exec and
        # the log stream act on it.
        self.running_job = str(
            self.admin("POST", "/api/v1/workloads", json={"workspace": "ml-a", **JOB})["id"]
        )
        # A volume holding one file, for the routes that read volumes and upload into them.
        self.admin("POST", "/api/v1/workspaces/ml-a/volumes", json={"name": SHARED_VOLUME})
        content = b"hello\n"
        whole = {
            **TUS,
            "Upload-Length": str(len(content)),
            "Upload-Metadata": tus_metadata(SHARED_FILE),
            "Content-Type": "application/offset+octet-stream",
        }
        uploads = f"/api/v1/workspaces/ml-a/volumes/{SHARED_VOLUME}/uploads"
        self.admin("POST", uploads, content=content, headers=whole)
        self._wait_running(self.running_job)

    def _wait_running(self, workload_id: str) -> None:
        deadline = time.monotonic() + 60
        while (status := self.admin("GET", f"/api/v1/workloads/{workload_id}")["status"]) != "RUNNING":
            assert status in ("PENDING", "QUEUED", "ADMITTED", "STARTING"), status
            assert time.monotonic() < deadline, f"the filler job is still {status}"
            time.sleep(0.2)

    def login(self, name: str, password: str) -> str:
        response = self.http.post("/api/v1/auth/login", json={"username": name, "password": password})
        assert response.status_code == 200, response.text
        return str(response.json()["token"])

    def admin(self, method: str, path: str, headers: dict[str, str] | None = None, **kwargs: Any) -> Any:
        response = self.http.request(
            method, path, headers={**self._auth("admin"), **(headers or {})}, **kwargs
        )
        assert response.status_code < 300, f"{method} {path}: {response.text}"
        return response.json() if response.content else None

    def _auth(self, persona: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[persona]}"} if persona in self.tokens else {}

    # -- Targets -------------------------------------------------------------------------------------
    def unique(self, prefix: str) -> str:
        return f"{prefix}-{next(self.counter)}"

    def workload(self) -> str:
        return str(self.admin("POST", "/api/v1/workloads", json={"workspace": "ml-a", **JOB})["id"])

    def workspace(self) -> str:
        name = self.unique("ws")
        self.admin("POST", "/api/v1/workspaces", json={"name": name})
        return name

    def user(self) -> str:
        name = self.unique("u")
        self.admin("POST", "/api/v1/users", json={"username": name, "password": PASSWORD})
        return name

    def ml_a_viewer(self) -> str:
        name = self.user()
        self.admin("PUT", "/api/v1/workspaces/ml-a/members", json={"username": name, "role": "viewer"})
        return name

    def member_token(self) -> str:
        response = self.http.post(
            "/api/v1/auth/tokens", json={"name": self.unique("t")}, headers=self._auth("member")
        )
        return str(response.json()["id"])

    def member_bundle(self) -> str:
        call = _code_bundle(self, "member")
        assert call.content is not None
        headers = {**self._auth("member"), "Content-Type": "application/gzip"}
        response = self.http.post("/api/v1/code-bundles", content=call.content, headers=headers)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def running(self) -> str:
        return self.running_job

    def service(self) -> str:
        return str(self.admin("POST", "/api/v1/workloads", json={"workspace": "ml-a", **SERVICE})["id"])

    def volume(self) -> str:
        name = self.unique("vol")
        self.admin("POST", "/api/v1/workspaces/ml-a/volumes", json={"name": name})
        return name

    def upload(self) -> str:
        headers = {
            **TUS,
            "Upload-Length": str(UPLOAD_LENGTH),
            "Upload-Metadata": tus_metadata(self.unique("f")),
        }
        response = self.http.post(
            f"/api/v1/workspaces/ml-a/volumes/{SHARED_VOLUME}/uploads",
            headers={**self._auth("admin"), **headers},
        )
        assert response.status_code == 201, response.text
        return response.headers["location"].rsplit("/", 1)[-1]

    def channel(self) -> str:
        name = self.unique("ch")
        self.admin("POST", "/api/v1/alert-channels", json={"name": name, "kind": "webhook", "target": HOOK})
        return name

    def subscription(self) -> str:
        return str(
            self.admin("POST", "/api/v1/alert-subscriptions", json={"channel": self.channel(), "all": True})[
                "id"
            ]
        )

    def idle_policy(self) -> str:
        self.admin("PUT", "/api/v1/idle-policies", json={"kind": "service", "enabled": False})
        return "service"

    def asset(self) -> str:
        return sorted(p.name for p in (BUILT_CONSOLE / "assets").iterdir())[0]

    # -- one cell of the matrix ----------------------------------------------------------------------
    def call(self, method: str, path: str, persona: str, call: Call) -> Answer:
        url = re.sub(r"\{(\w+)\}", lambda m: path_value(method, path, m.group(1), self), path) + call.suffix
        headers = self._auth(persona)
        if call.fresh_session and persona != "anonymous":
            secret = self.login(persona, PASSWORD)
            headers = {"Authorization": f"Bearer {secret}"}
        headers = {**headers, **(call.headers or {})}
        if method == "WEBSOCKET":
            return self._handshake(url, headers, call)
        if method == "MOUNT":
            method = "GET"
        if call.stream:
            with self.http.stream(method, url, headers=headers, params=call.params) as response:
                return Answer(response.status_code, response.headers.get("content-type", ""), "(a stream)")
        if call.content is not None:
            headers = {**headers, "Content-Type": call.content_type or "application/octet-stream"}
            answer = self.http.request(method, url, headers=headers, content=call.content, params=call.params)
        else:
            answer = self.http.request(
                method, url, headers=headers, json=call.json, params=call.params, follow_redirects=False
            )
        return Answer(answer.status_code, answer.headers.get("content-type", ""), answer.text)

    def _handshake(self, url: str, headers: dict[str, str], call: Call) -> Answer:
        """101 when the server accepts the WebSocket (closed at once), else the status it refused with."""
        query = str(httpx.QueryParams(call.params or {}))
        address = self.server.url.replace("http://", "ws://", 1) + url + (f"?{query}" if query else "")
        try:
            with connect(address, additional_headers=headers, open_timeout=30) as socket:
                return Answer(socket.response.status_code, "", "(accepted)")
        except InvalidStatus as refused:
            body = refused.response.body.decode(errors="replace") if refused.response.body else ""
            return Answer(
                refused.response.status_code, refused.response.headers.get("content-type", ""), body
            )


@dataclass(frozen=True)
class Answer:
    status_code: int
    content_type: str
    text: str


@pytest.fixture(scope="module")
def matrix_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fixture]:
    root: Path = tmp_path_factory.mktemp("authz")
    # One simulated node with 2 cores: the filler job holds them, every other workload stays queued.
    server = ServerProcess(data_dir=root / "data", simulate_gpus="1xA100-80GB")
    server.extra_env = {"ASTRAGO_LOGIN_FAILURES_PER_ADDRESS": "1000"}
    server.start()
    try:
        yield Fixture(server)
    finally:
        server.stop()


@pytest.mark.parametrize(("method", "path"), sorted(RULES))
def test_route_answers_each_persona_as_its_rule_says(matrix_server: Fixture, method: str, path: str) -> None:
    rule = RULES[(method, path)]
    got: dict[str, int] = {}
    for persona in PERSONAS:
        response = matrix_server.call(method, path, persona, rule.request(matrix_server, persona))
        got[persona] = response.status_code
        problem_expected = method != "HEAD"  # a HEAD answer has no body to hold a problem
        if problem_expected and response.status_code >= 400 and response.status_code != 422:
            assert response.content_type.startswith("application/problem+json"), response.text
    expected = {persona: rule.expected(persona) for persona in PERSONAS}
    assert got == expected
