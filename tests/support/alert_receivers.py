"""Real receivers for alert notifications on loopback: an aiohttp web app that checks the webhook's
HMAC signature and timestamp (and can fail its first requests, to exercise retries), and an aiosmtpd SMTP
server that keeps the emails it receives."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from typing import Any

from aiohttp import web
from aiosmtpd.controller import Controller

from astrago.monitor.alerts.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from tests.support.postgres import free_port


@dataclass
class WebhookReceiver:
    """POST /hook: 401 for a missing or wrong signature or a stale timestamp; 500 for the first
    `fail_first` valid requests; else 204 and the payload is kept. POST /plain keeps any JSON body (an
    unsigned receiver, as Apprise's json:// posts)."""

    secret: str
    fail_first: int = 0
    port: int = field(default_factory=free_port)
    received: list[dict[str, Any]] = field(default_factory=list)
    plain: list[dict[str, Any]] = field(default_factory=list)
    refused: int = 0
    failed: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    @property
    def plain_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/plain"

    async def _hook(self, request: web.Request) -> web.Response:
        body = await request.read()
        signed = verify(
            self.secret,
            request.headers.get(TIMESTAMP_HEADER, ""),
            request.headers.get(SIGNATURE_HEADER, ""),
            body,
            now=time.time(),
        )
        with self._lock:
            if not signed:
                self.refused += 1
                return web.Response(status=401, text="bad signature")
            if self.failed < self.fail_first:
                self.failed += 1
                return web.Response(status=500, text="receiver down for maintenance")
            self.received.append(json.loads(body))
        return web.Response(status=204)

    async def _plain(self, request: web.Request) -> web.Response:
        payload = await request.json()
        with self._lock:
            self.plain.append(payload)
        return web.Response(status=200, text="ok")

    def events(self, rule: str | None = None) -> list[tuple[str, str, str]]:
        """(event, rule, key) of each signed notification received, in order."""
        with self._lock:
            return [
                (p["event"], p["alert"]["rule"], p["alert"]["key"])
                for p in self.received
                if rule is None or p["alert"]["rule"] == rule
            ]

    @contextlib.contextmanager
    def running(self) -> Iterator[WebhookReceiver]:
        loop = asyncio.new_event_loop()
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        app.router.add_post("/plain", self._plain)
        runner = web.AppRunner(app)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            loop.close()


class _Mailbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.original_content or envelope.content))
        return "250 Message accepted for delivery"


@contextlib.contextmanager
def smtp_server() -> Iterator[tuple[int, list[Message]]]:
    """A real SMTP server on a free loopback port; yields (port, the messages it received)."""
    mailbox = _Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, mailbox.messages
    finally:
        controller.stop()
