"""How a replica ended, in the words a user reads: from the runner's status file and the server's record."""

from __future__ import annotations

import time

from astrago.backends.local.process import describe_signal
from astrago.backends.local.records import Outcome, ReplicaRecord
from astrago.backends.local.runner import RunnerStatus
from astrago.domain.enums import ReplicaState

SIGNAL_EXIT_BASE = 128  # a command killed by signal N is reported with exit code 128 + N, as shells do


def outcome_of(record: ReplicaRecord, status: RunnerStatus | None, runner_returncode: int | None) -> Outcome:
    """The outcome of a replica whose runner has exited (`runner_returncode` when this server reaped it)."""
    stop_reason = record.stop.reason if record.stop else (status.stop_reason if status else None)
    if status is None or status.finished_at is None:
        if stop_reason:  # signalled before it could install its handlers: it never ran the command
            return Outcome(state=ReplicaState.STOPPED, reason=stop_reason, finished_at=time.time())
        runner = record.runner.pid if record.runner else "?"
        how = f" ({_describe_returncode(runner_returncode)})" if runner_returncode is not None else ""
        return lost(f"its runner process {runner} ended{how} without recording how the command ended")
    exit_code = status.exit_code
    if status.signal is not None:
        exit_code = SIGNAL_EXIT_BASE + status.signal
    if stop_reason:
        failed = record.stop is not None and record.stop.failed
        return Outcome(
            state=ReplicaState.FAILED if failed else ReplicaState.STOPPED,
            reason=stop_reason,
            exit_code=exit_code,
            finished_at=status.finished_at,
        )
    if status.signal is not None:
        reason = f"killed by signal {describe_signal(status.signal)}"
    else:
        reason = f"exited with code {status.exit_code}"
        if status.error:
            reason += f": {status.error}"
    state = ReplicaState.SUCCEEDED if exit_code == 0 else ReplicaState.FAILED
    return Outcome(state=state, reason=reason, exit_code=exit_code, finished_at=status.finished_at)


def lost(reason: str) -> Outcome:
    return Outcome(state=ReplicaState.LOST, reason=reason, finished_at=time.time())


def _describe_returncode(returncode: int) -> str:
    return f"killed by signal {describe_signal(-returncode)}" if returncode < 0 else f"exit code {returncode}"
