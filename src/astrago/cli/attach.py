"""Following a workload to its end: its output, then an exit code a shell or CI step can test.

Exit codes: 0 when it SUCCEEDED; its own exit code when it FAILED with one (1 when it failed without one,
e.g. it could not start); 130 when it was CANCELLED (or when the user detached with Ctrl-C). The reason of
anything but success goes to stderr, so stdout holds only the workload's output."""

from __future__ import annotations

import sys
import time

import typer

from astrago.cli import logstream
from astrago.cli.errors import err_console
from astrago.cli.http import ApiClient
from astrago.domain.enums import WorkloadStatus
from astrago.services.schemas import WorkloadOut

CANCELLED_EXIT = 130
DETACHED_EXIT = 130
_TERMINAL = {WorkloadStatus.SUCCEEDED, WorkloadStatus.FAILED, WorkloadStatus.CANCELLED}


def exit_code_of(workload: WorkloadOut) -> int:
    """The exit code that stands for how `workload` ended (see the module docstring)."""
    if workload.status is WorkloadStatus.SUCCEEDED:
        return 0
    if workload.status is WorkloadStatus.CANCELLED:
        return CANCELLED_EXIT
    codes = [p.exit_code for p in workload.placements if p.exit_code]
    return codes[0] if codes and 0 < codes[0] < 256 else 1


def report_end(workload: WorkloadOut) -> int:
    """Say on stderr how a workload that did not succeed ended; its exit code."""
    code = exit_code_of(workload)
    if code:
        err_console.print(
            f"workload {workload.id} {workload.status.value}: {workload.reason or 'no reason given'}"
        )
    return code


def wait_until_placed(client: ApiClient, workload_id: str) -> WorkloadOut:
    """A queued workload is waited for (saying why it waits, once per new reason) instead of failing."""
    said = None
    while True:
        workload = client.workload(workload_id)
        if workload.placements or workload.status in _TERMINAL:
            return workload
        if workload.reason != said:
            err_console.print(f"[dim]{workload_id} is {workload.status.value}: {workload.reason}[/]")
            said = workload.reason
        time.sleep(0.5)


def follow_logs(
    client: ApiClient, workload_id: str, replica: int = 0, interactive_interrupt: bool = False
) -> None:
    """Copy the replica's output to stdout until it ends. With `interactive_interrupt`, Ctrl-C asks
    whether to cancel the workload or detach from it (without a terminal to ask, it detaches)."""
    try:
        workload = wait_until_placed(client, workload_id)
        if workload.placements:
            _copy_until_ended(client, workload_id, replica)
    except KeyboardInterrupt:
        if not interactive_interrupt:
            raise
        _interrupted(client, workload_id)


def _copy_until_ended(client: ApiClient, workload_id: str, replica: int) -> None:
    """Streamed as server-sent events; a dropped connection resumes after the last line printed."""
    logstream.follow(client, workload_id, replica)


def _interrupted(client: ApiClient, workload_id: str) -> None:
    if sys.stdin.isatty():
        err_console.print()
        choice = typer.prompt(f"cancel {workload_id}, or detach and leave it running? [c/d]", default="d")
        if choice.strip().lower().startswith("c"):
            client.cancel(workload_id)
            err_console.print(f"cancelling {workload_id}; waiting for it to stop (Ctrl-C again to detach)")
            try:
                follow_logs(client, workload_id, interactive_interrupt=False)
            except KeyboardInterrupt:
                pass
            else:
                return
    err_console.print(f"detached; {workload_id} keeps running (astrago logs -f {workload_id})")
    raise typer.Exit(DETACHED_EXIT)
