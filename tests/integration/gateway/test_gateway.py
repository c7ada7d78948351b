"""The gateway, driven as a user would: a real server, a real web app as an interactive workload, HTTP,
large bodies both ways, SSE and WebSocket through `/proxy/<workload>/<port>/`, and who may reach it."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.integration.gateway.conftest import Gateway


def bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_the_app_gets_the_request_without_the_platform_credentials(gateway: Gateway) -> None:
    escaped = httpx.get(f"{gateway.base}/raw/a%2Fb%20c", headers=bearer(gateway.admin.token))
    assert escaped.json() == "/raw/a%2Fb%20c"  # escapes reach the app as the client sent them
    response = httpx.get(
        f"{gateway.base}/hello?x=1",
        headers={**bearer(gateway.admin.token), "Cookie": "astrago_proxy=secret; theme=dark"},
    )
    assert response.status_code == 200, response.text
    seen = response.json()
    assert seen["path"] == "/hello"  # an app that does not know its prefix gets the rest of the path
    assert seen["query"] == "x=1"
    assert "authorization" not in seen["headers"]
    assert seen["headers"]["cookie"] == "theme=dark"
    assert seen["headers"]["x-forwarded-prefix"] == f"/proxy/{gateway.workload_id}/8000"


def test_large_bodies_stream_both_ways(gateway: Gateway) -> None:
    upload = os.urandom(24 * 1024 * 1024)
    with httpx.Client(headers=bearer(gateway.admin.token), timeout=60) as client:
        digest = client.post(
            f"{gateway.base}/digest",
            content=iter([upload[i : i + (1 << 20)] for i in range(0, len(upload), 1 << 20)]),
        )
        assert digest.json() == {"size": len(upload), "sha256": hashlib.sha256(upload).hexdigest()}
        size = 64 * 1024 * 1024
        with client.stream("GET", f"{gateway.base}/bytes/{size}") as download:
            assert download.headers["content-length"] == str(size)
            assert sum(len(chunk) for chunk in download.iter_raw()) == size


def test_server_sent_events_arrive_as_they_are_sent(gateway: Gateway) -> None:
    with httpx.stream("GET", f"{gateway.base}/events", headers=bearer(gateway.admin.token)) as events:
        assert events.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in events.iter_lines() if line.startswith("data:")]
    assert lines == ["data: tick 0", "data: tick 1", "data: tick 2"]


def test_redirects_stay_behind_the_gateway(gateway: Gateway) -> None:
    response = httpx.get(f"{gateway.base}/away", headers=bearer(gateway.admin.token))
    assert response.status_code == 302
    assert response.headers["location"] == f"/proxy/{gateway.workload_id}/8000/hello"


def test_websocket_frames_relay_both_ways(gateway: Gateway) -> None:
    async def talk() -> tuple[object, object]:
        url = gateway.base.replace("http://", "ws://") + "/echo"
        async with connect(url, additional_headers=bearer(gateway.admin.token)) as websocket:
            await websocket.send("hello")
            text = await websocket.recv()
            await websocket.send(b"\x01\x02\x03")
            data = await websocket.recv()
            return text, data

    assert asyncio.run(talk()) == ("echo: hello", b"\x03\x02\x01")


@pytest.mark.parametrize("who", ["outsider", "nobody"])
def test_others_get_404_or_401(gateway: Gateway, who: str) -> None:
    headers = bearer(gateway.outsider.token) if who == "outsider" else {}
    response = httpx.get(f"{gateway.base}/hello", headers=headers)
    expected = 404 if who == "outsider" else 401
    assert response.status_code == expected
    assert response.headers["content-type"] == "application/problem+json"
    missing = httpx.get(f"{gateway.admin.server.url}/proxy/no-such-workload/8000/hello", headers=headers)
    assert missing.status_code == expected  # the same answer: names do not leak


def test_a_viewer_cannot_use_a_notebook_shell(gateway: Gateway) -> None:
    response = httpx.get(f"{gateway.base}/hello", headers=bearer(gateway.viewer.token))
    assert response.status_code == 403
    assert "member" in response.json()["detail"]


def test_websockets_refuse_outsiders(gateway: Gateway) -> None:
    async def attempt() -> int:
        url = gateway.base.replace("http://", "ws://") + "/echo"
        try:
            async with connect(url, additional_headers=bearer(gateway.outsider.token)):
                return 101
        except InvalidStatus as refused:
            return refused.response.status_code

    assert asyncio.run(attempt()) == 404


def test_a_browser_link_trades_its_one_time_ticket_for_a_cookie(gateway: Gateway) -> None:
    opened = gateway.admin.api("POST", f"/api/v1/workloads/{gateway.workload_id}/endpoints/8000/open")
    assert opened.status_code == 200, opened.text
    url = gateway.admin.server.url + opened.json()["url"]
    with httpx.Client() as browser:
        first = browser.get(url)
        assert first.status_code == 303
        assert first.headers["location"] == f"/proxy/{gateway.workload_id}/8000/"
        cookie = first.headers["set-cookie"]
        assert "HttpOnly" in cookie
        assert f"Path=/proxy/{gateway.workload_id}/" in cookie
        assert "SameSite=lax" in cookie
        page = browser.get(f"{gateway.base}/hello")
        assert page.status_code == 200
        assert "astrago_proxy" not in page.json()["headers"].get("cookie", "")
        # a page of another site may not use the cookie to post or to open a WebSocket
        forged = browser.post(
            f"{gateway.base}/digest", content=b"x", headers={"Origin": "http://evil.example"}
        )
        assert forged.status_code == 403
    with httpx.Client() as other_browser:
        assert other_browser.get(url).status_code == 401  # a ticket works once


def test_endpoints_list_each_port_and_readiness(gateway: Gateway) -> None:
    listed = gateway.admin.api("GET", f"/api/v1/workloads/{gateway.workload_id}/endpoints")
    assert listed.json() == [
        {
            "port": 8000,
            "path": f"/proxy/{gateway.workload_id}/8000/",
            "ready": True,
            "replicas_ready": 1,
            "replicas": 1,
        }
    ]
    assert (
        gateway.outsider.api("GET", f"/api/v1/workloads/{gateway.workload_id}/endpoints").status_code == 404
    )


def test_astrago_open_prints_a_link_that_logs_the_browser_in(gateway: Gateway) -> None:
    printed = gateway.admin.cli("open", gateway.workload_id, "--print")
    url = printed.stdout.strip()
    assert url.startswith(f"{gateway.admin.server.url}/proxy/{gateway.workload_id}/8000/?astrago_ticket=")
    with httpx.Client(follow_redirects=True) as browser:
        assert browser.get(url).status_code == 404  # the app has no page at /, but the gateway let us in
        assert browser.get(f"{gateway.base}/hello").status_code == 200
    wrong = gateway.admin.cli("open", gateway.workload_id, "--port", "9999", check=False)
    assert wrong.returncode == 2
    assert "does not expose port 9999" in wrong.stderr
    assert (
        json.loads(gateway.admin.api("GET", "/api/v1/workloads/" + gateway.workload_id).text)["status"]
        == "RUNNING"
    )


def test_a_read_only_token_reads_through_the_gateway_and_nothing_more(gateway: Gateway) -> None:
    """To a notebook, a POST or a WebSocket is running code: a read-only token gets GET, HEAD, OPTIONS."""
    made = gateway.admin.api(
        "POST", "/api/v1/auth/tokens", json={"name": "gateway-reader", "read_only": True}
    )
    assert made.status_code == 201, made.text
    reader = bearer(made.json()["token"])
    assert httpx.get(f"{gateway.base}/hello", headers=reader).status_code == 200
    refused = httpx.post(f"{gateway.base}/hello", headers=reader, content=b"x")
    assert refused.status_code == 403
    assert "read-only" in refused.json()["detail"]

    async def attempt() -> int:
        url = gateway.base.replace("http://", "ws://") + "/echo"
        try:
            async with connect(url, additional_headers=reader):
                return 101
        except InvalidStatus as refused:
            return refused.response.status_code

    assert asyncio.run(attempt()) == 403
