"""Follows the live event stream over real HTTP (httpx streaming) on a background thread."""

from __future__ import annotations

import json
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class StreamEvent:
    type: str
    id: int
    data: Any


class EventFollower:
    """One open `GET /api/v1/events/stream`; events are parsed as the SSE format defines them."""

    def __init__(self, url: str, token: str, last_event_id: int | None = None) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        self.events: queue.Queue[StreamEvent] = queue.Queue()
        self.seen: list[StreamEvent] = []
        self.comments: list[str] = []
        self.status_code: int | None = None
        self._client = httpx.Client(base_url=url, headers=headers, timeout=httpx.Timeout(30, read=None))
        self._opened = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._opened.wait(15):
            raise AssertionError("the event stream did not answer in 15 s")

    def _run(self) -> None:
        try:
            with self._client.stream("GET", "/api/v1/events/stream") as response:
                self.status_code = response.status_code
                self._opened.set()
                fields: dict[str, str] = {}
                for line in response.iter_lines():
                    if line.startswith(":"):
                        self.comments.append(line)
                    elif line == "":
                        if "data" in fields:
                            event = StreamEvent(
                                fields.get("event", "message"), int(fields["id"]), json.loads(fields["data"])
                            )
                            self.events.put(event)
                        fields = {}
                    else:
                        name, _, value = line.partition(":")
                        fields[name] = value.removeprefix(" ")
        except (httpx.HTTPError, RuntimeError):
            pass  # closed by the test or by a stopped server
        finally:
            self._opened.set()

    def next(self, timeout: float = 20.0) -> StreamEvent:
        event = self.events.get(timeout=timeout)
        self.seen.append(event)
        return event

    def until(self, what: str, match: Any, timeout: float = 30.0) -> StreamEvent:
        """The first event for which `match(event)` holds; every event read is kept in `seen`."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                event = self.next(left)
            except queue.Empty:
                break
            if match(event):
                return event
        raise AssertionError(f"no event {what} in {timeout}s; saw {[(e.type, e.data) for e in self.seen]}")

    def close(self) -> None:
        self._client.close()
        self._thread.join(10)

    def __enter__(self) -> EventFollower:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
