"""`astrago ps --watch`: the workload list kept current from the server's live event stream (no polling).

In a terminal the table redraws in place whenever a shown workload changes. In a pipe it prints the table
once and then one line per change, as `kubectl get -w` does, so `grep` and `awk` see every transition of
a job through to its end; `-o json` prints one JSON object per line (NDJSON), `-o name` one `kind/id`.

The stream carries each workload's *current* state, so a change seen twice after a reconnect does no
harm; after a reconnect the client resumes from the last event id it saw, and refetches the list when the
server no longer knows that point (`reset`)."""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field

import httpx
import yaml
from rich.console import Console, Group
from rich.live import Live

from astrago.cli.errors import CliError
from astrago.cli.http import ApiClient, cli_errors
from astrago.cli.logstream import Event, parse_events
from astrago.cli.output import OutputFormat, table_lines
from astrago.cli.render import WORKLOAD_COLUMNS, workload_row
from astrago.client.client import raise_for_problem
from astrago.domain.status import TERMINAL_STATUSES
from astrago.services.live_events import LiveEventType
from astrago.services.schemas import WorkloadOut

STREAM_PATH = "/api/v1/events/stream"
READ_TIMEOUT_S = 60.0  # the server comments every 15 s on an idle stream
RECONNECT_FOR_S = 120.0
RECONNECT_PAUSE_S = 1.0


@dataclass(frozen=True, slots=True)
class WatchFilter:
    workspace: str | None
    states: Sequence[str] | None  # None: every state

    def matches(self, workload: WorkloadOut) -> bool:
        if self.workspace and workload.workspace != self.workspace:
            return False
        return self.states is None or workload.status.value in self.states


@dataclass(slots=True)
class WatchedList:
    """What `ps` with the same flags would print now, updated one event at a time."""

    filter: WatchFilter
    limit: int
    rows: dict[str, WorkloadOut] = field(default_factory=dict)
    ended: set[str] = field(default_factory=set)  # ids seen in a final state
    fetched: bool = False

    def replace_all(self, items: Sequence[WorkloadOut]) -> None:
        self.rows = {w.id: w for w in items if self.filter.matches(w)}
        self.ended = {w.id for w in items if w.status in TERMINAL_STATUSES}
        self.fetched = True

    def apply(self, workload: WorkloadOut) -> bool:
        """Takes in a workload's new state; True when the caller should show the change: it matches the
        filter, or it was shown and now leaves it (a job's last transition is news, not noise).

        An event can be older than the list it follows (sent before the list was read, delivered after):
        a final state is never replaced by an earlier one."""
        if workload.id in self.ended:
            return False
        if workload.status in TERMINAL_STATUSES:
            self.ended.add(workload.id)
        was_shown = workload.id in self.rows
        if self.filter.matches(workload):
            self.rows[workload.id] = workload
            return True
        self.rows.pop(workload.id, None)
        return was_shown

    def newest(self) -> list[WorkloadOut]:
        ordered = sorted(self.rows.values(), key=lambda w: (w.created_at, w.id), reverse=True)
        return ordered[: self.limit]


def watch(client: ApiClient, watched: WatchedList, fmt: OutputFormat) -> None:
    """Runs until Ctrl-C (exit 0) or until the server stops accepting the token.

    The stream is opened *before* the list is fetched (the list is fetched on its `ready`), so a change
    that happens in between arrives as an event rather than falling between the two."""
    show = _Terminal(watched, fmt) if sys.stdout.isatty() and _is_table(fmt) else _Lines(watched, fmt)
    with ExitStack() as shown:
        try:
            for event in _follow(client):
                if event.kind == LiveEventType.READY and not watched.fetched:
                    _refetch(client, watched)
                    shown.enter_context(show)
                elif event.kind == LiveEventType.RESET:  # the server lost our place: start over
                    _refetch(client, watched)
                    show.refresh_all()
                elif event.kind == LiveEventType.WORKLOAD and watched.fetched:
                    workload = WorkloadOut.model_validate_json(event.data)
                    if watched.apply(workload):
                        show.changed(workload)
                elif event.kind == LiveEventType.UNAUTHENTICATED:
                    detail = json.loads(event.data).get("detail", "the token is no longer valid")
                    raise CliError(f"the server ended the watch: {detail}", hint="run `astrago login` again")
        except KeyboardInterrupt:
            return


def _refetch(client: ApiClient, watched: WatchedList) -> None:
    where = watched.filter
    watched.replace_all(client.workloads(where.workspace, where.states, watched.limit).items)


def _plain_lines(workloads: Sequence[WorkloadOut], fmt: OutputFormat) -> list[str]:
    lines = table_lines(WORKLOAD_COLUMNS, [workload_row(w) for w in workloads], fmt, terminal=False, width=0)
    return [line.plain.rstrip() for line in lines]


def _is_table(fmt: OutputFormat) -> bool:
    return fmt in (OutputFormat.TABLE, OutputFormat.WIDE)


def _follow(client: ApiClient) -> Iterator[Event]:
    """Events from the live stream, across dropped connections: resumes after the last id it saw."""
    last_id: str | None = None
    down_since: float | None = None

    def noting_ids(lines: Iterator[str]) -> Iterator[str]:
        # `parse_events` drops ids; the watch needs the last one to resume from.
        nonlocal last_id
        for line in lines:
            if line.startswith("id:"):
                last_id = line[3:].strip()
            yield line

    while True:
        headers = {"Last-Event-ID": last_id} if last_id else {}
        try:
            with client.http.stream(
                "GET", STREAM_PATH, headers=headers, timeout=httpx.Timeout(10.0, read=READ_TIMEOUT_S)
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    with cli_errors():
                        raise_for_problem(response)
                down_since = None
                yield from parse_events(noting_ids(response.iter_lines()))
        except httpx.TransportError as exc:
            down_since = down_since or time.monotonic()
            if time.monotonic() - down_since > RECONNECT_FOR_S:
                raise CliError(f"lost the server for {RECONNECT_FOR_S:.0f} s: {exc}") from exc
        time.sleep(RECONNECT_PAUSE_S)


class _Terminal:
    """The table, redrawn in place."""

    def __init__(self, watched: WatchedList, fmt: OutputFormat) -> None:
        self.watched, self.fmt = watched, fmt
        self.live = Live(self._render(), console=Console(highlight=False), auto_refresh=False)

    def _render(self) -> Group:
        rows = [workload_row(w) for w in self.watched.newest()]
        width = shutil.get_terminal_size().columns
        return Group(*table_lines(WORKLOAD_COLUMNS, rows, self.fmt, terminal=True, width=width))

    def __enter__(self) -> _Terminal:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.__exit__(None, None, None)

    def refresh_all(self) -> None:
        self.live.update(self._render(), refresh=True)

    def changed(self, workload: WorkloadOut) -> None:
        self.refresh_all()


class _Lines:
    """The current list once, then one line per change (NDJSON with -o json, `kind/id` with -o name)."""

    def __init__(self, watched: WatchedList, fmt: OutputFormat) -> None:
        self.watched, self.fmt = watched, fmt

    def __enter__(self) -> _Lines:
        self.refresh_all()
        return self

    def __exit__(self, *exc: object) -> None:
        sys.stdout.flush()

    def refresh_all(self) -> None:
        items = list(reversed(self.watched.newest()))  # oldest first, so later lines are later news
        if _is_table(self.fmt):
            self._write(_plain_lines(items, self.fmt))
        else:
            for workload in items:
                self.changed(workload)

    def changed(self, workload: WorkloadOut) -> None:
        if self.fmt is OutputFormat.NAME:
            self._write([f"workload/{workload.id}"])
        elif self.fmt is OutputFormat.JSON:
            self._write([json.dumps(workload.model_dump(mode="json"), ensure_ascii=False)])
        elif self.fmt is OutputFormat.YAML:  # one document per change
            dumped = yaml.safe_dump(workload.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
            self._write(["---", dumped.rstrip("\n")])
        else:
            # Rows printed alone cannot share the header's widths: separate columns by two spaces.
            self._write(_plain_lines([workload], self.fmt)[1:])

    @staticmethod
    def _write(lines: list[str]) -> None:
        for line in lines:
            sys.stdout.write(line + "\n")
        sys.stdout.flush()
