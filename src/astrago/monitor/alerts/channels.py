"""Sending one notification to one channel: a signed JSON webhook, an email over SMTP, or an Apprise URL.

Each sender raises SendFailed with a readable reason (kept in the delivery log); the caller retries."""

from __future__ import annotations

import asyncio
import json
import logging
import smtplib
import ssl
import time
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Literal
from urllib.parse import urlsplit

import httpx

from astrago.config import Settings
from astrago.monitor.alerts.rules import ChannelKind, DeliveryEvent
from astrago.monitor.alerts.schemas import AlertOut
from astrago.monitor.alerts.signing import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    signature,
)

log = logging.getLogger(__name__)
ERROR_CHARS = 500


class SendFailed(Exception):
    pass


@dataclass(frozen=True)
class Message:
    """One alert's fired or resolved notification."""

    event: DeliveryEvent
    delivery_id: int
    alert: AlertOut

    @property
    def title(self) -> str:
        state = "FIRING" if self.event is DeliveryEvent.FIRED else "RESOLVED"
        return f"[AstraGo] {state} ({self.alert.severity.value}) {self.alert.rule}: {self.alert.key}"

    @property
    def text(self) -> str:
        a = self.alert
        lines = [a.summary]
        if self.event is DeliveryEvent.RESOLVED:
            lines.append(f"Resolved: {a.resolution or 'the condition no longer holds'}")
        for label, value in (("workspace", a.workspace), ("workload", a.workload_id), ("node", a.node)):
            if value:
                lines.append(f"{label}: {value}")
        lines.append(f"opened: {a.opened_at.isoformat()}")
        if a.resolved_at:
            lines.append(f"resolved: {a.resolved_at.isoformat()}")
        lines.append(f"alert id: {a.id}")
        return "\n".join(lines)

    def json_body(self) -> bytes:
        payload = {
            "event": self.event.value,
            "delivery_id": self.delivery_id,
            "alert": self.alert.model_dump(mode="json"),
        }
        return json.dumps(payload, separators=(",", ":")).encode()


def check_target(kind: ChannelKind, target: str) -> str | None:
    """Why a channel's target cannot work, or None."""
    if kind is ChannelKind.WEBHOOK:
        parts = urlsplit(target)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return f"a webhook needs an http(s) URL, not {target!r}"
    elif kind is ChannelKind.EMAIL:
        local, at, domain = target.partition("@")
        if not at or not local or "." not in domain or any(c.isspace() for c in target):
            return f"{target!r} is not an email address"
    else:
        import apprise  # imported here: it loads every service plugin

        if apprise.Apprise.instantiate(target, suppress_exceptions=True) is None:
            return "Apprise does not understand this URL (see https://github.com/caronc/apprise/wiki)"
    return None


def shown_target(kind: ChannelKind, target: str) -> str:
    """What the API shows of a target: an Apprise URL carries the service's token, so only its scheme."""
    if kind is ChannelKind.APPRISE:
        return f"{urlsplit(target).scheme or 'apprise'}://…"
    if kind is ChannelKind.WEBHOOK:
        parts = urlsplit(target)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}{parts.path}"  # query strings may hold tokens too
    return target


class Senders:
    """The clients every delivery shares (one HTTP connection pool)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.http = httpx.AsyncClient(timeout=settings.alert_send_timeout_s, follow_redirects=False)
        self._apprise_lock = asyncio.Lock()  # Apprise's log capture is process-wide

    async def aclose(self) -> None:
        await self.http.aclose()

    async def send(self, kind: ChannelKind, target: str, secret: str | None, message: Message) -> None:
        if kind is ChannelKind.WEBHOOK:
            await self._webhook(target, secret, message)
        elif kind is ChannelKind.EMAIL:
            await asyncio.to_thread(self._email, target, message)
        else:
            async with self._apprise_lock:
                await asyncio.to_thread(_apprise, target, message)

    async def _webhook(self, url: str, secret: str | None, message: Message) -> None:
        body = message.json_body()
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "AstraGo-Alerts",
            TIMESTAMP_HEADER: str(timestamp),
            DELIVERY_HEADER: str(message.delivery_id),
            EVENT_HEADER: message.event.value,
        }
        if secret:
            headers[SIGNATURE_HEADER] = signature(secret, timestamp, body)
        try:
            response = await self.http.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise SendFailed(f"{type(exc).__name__}: {exc}"[:ERROR_CHARS] or type(exc).__name__) from exc
        if not 200 <= response.status_code < 300:
            raise SendFailed(f"HTTP {response.status_code}: {response.text[:200]}")

    def _email(self, address: str, message: Message) -> None:
        s = self.settings
        if not s.smtp_host:
            raise SendFailed("no SMTP server is configured (set smtp_host)")
        mail = EmailMessage()
        mail["From"] = s.smtp_from
        mail["To"] = address
        mail["Subject"] = message.title
        mail["X-AstraGo-Alert"] = str(message.alert.id)
        mail.set_content(message.text)
        context = ssl.create_default_context()
        try:
            smtp: smtplib.SMTP
            if s.smtp_security == "tls":
                smtp = smtplib.SMTP_SSL(
                    s.smtp_host, s.smtp_port, timeout=s.alert_send_timeout_s, context=context
                )
            else:
                smtp = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.alert_send_timeout_s)
            with smtp:
                if s.smtp_security == "starttls":
                    smtp.starttls(context=context)
                if s.smtp_username:
                    password = s.smtp_password.get_secret_value() if s.smtp_password else ""
                    smtp.login(s.smtp_username, password)
                smtp.send_message(mail)
        except (OSError, smtplib.SMTPException) as exc:
            raise SendFailed(f"{type(exc).__name__}: {exc}"[:ERROR_CHARS]) from exc


SmtpSecurity = Literal["starttls", "tls", "none"]


def _apprise(url: str, message: Message) -> None:
    import apprise

    notifier = apprise.Apprise()
    if not notifier.add(url):
        raise SendFailed("Apprise does not understand this URL")
    with apprise.LogCapture(level=logging.WARNING) as captured:
        sent = notifier.notify(title=message.title, body=message.text)
    if not sent:
        lines = [line for line in captured.getvalue().splitlines() if line.strip()]
        raise SendFailed(
            ("; ".join(lines[-3:]) or "Apprise could not deliver the notification")[:ERROR_CHARS]
        )
