"""`astrago logs -f`: follows a replica's log over server-sent events, and after a dropped connection
resumes from the last line it printed (each event's id is the byte offset after its line), so no line is
lost or printed twice."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import httpx

from astrago.cli.errors import CliError
from astrago.cli.http import ApiClient, cli_errors
from astrago.client.client import raise_for_problem
from astrago.domain.status import TERMINAL_STATUSES

RECONNECT_FOR_S = 120.0  # give up after this long without getting through again
READ_TIMEOUT_S = 60.0  # the server sends a heartbeat every 15 s on an idle stream


@dataclass(frozen=True, slots=True)
class Event:
    kind: str
    data: str


def parse_events(lines: Iterator[str]) -> Iterator[Event]:
    """Server-sent events from the lines of a `text/event-stream` (comments skipped)."""
    kind, data = "message", list[str]()
    for line in lines:
        if not line:
            if data:
                yield Event(kind, "\n".join(data))
            kind, data = "message", []
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                kind = value
            elif name == "data":
                data.append(value)


def follow(client: ApiClient, workload_id: str, replica: int, out: BinaryIO | None = None) -> None:
    out = out or sys.stdout.buffer
    offset, down_since = 0, None
    path = f"/api/v1/workloads/{workload_id}/logs/stream"
    while True:
        params: dict[str, str | int] = {"replica": replica, "offset": offset, "follow": "true"}
        try:
            with client.http.stream(
                "GET", path, params=params, timeout=httpx.Timeout(10.0, read=READ_TIMEOUT_S)
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    with cli_errors():
                        raise_for_problem(response)
                down_since = None
                for event in parse_events(response.iter_lines()):
                    if event.kind == "end":
                        return
                    if event.kind == "error":  # e.g. a replica still being launched has no log yet
                        if client.workload(workload_id).status in TERMINAL_STATUSES:
                            return
                        time.sleep(0.3)
                        break
                    line = json.loads(event.data)
                    out.write(line["line"].encode() + b"\n")
                    out.flush()
                    offset = int(line["offset"])
        except httpx.TransportError as exc:
            down_since = down_since or time.monotonic()
            if time.monotonic() - down_since > RECONNECT_FOR_S:
                raise CliError(
                    f"lost the log stream of {workload_id} and could not reconnect: {exc}"
                ) from exc
            time.sleep(1.0)
