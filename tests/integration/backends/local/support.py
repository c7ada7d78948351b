"""Helpers for driving a real LocalBackend: wait for outcomes through `watch()`, read logs as they grow."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import psutil

from astrago.backends.base import ReplicaObservation
from astrago.backends.local import LocalBackend
from astrago.backends.local.process import read_identity
from astrago.backends.local.records import RecordStore
from astrago.backends.local.runner import read_json
from astrago.config import Settings
from astrago.domain.enums import ReplicaState

TERMINAL = frozenset({ReplicaState.SUCCEEDED, ReplicaState.FAILED, ReplicaState.STOPPED, ReplicaState.LOST})
# A guard against a hung test, never a timing assumption: every wait below ends on an event first.
GUARD_S = 30


class Outcomes:
    """Subscribes to `watch()` at creation, so no change after that is missed."""

    def __init__(self, backend: LocalBackend) -> None:
        self._stream = backend.watch()
        self._latest: dict[tuple[str, int], ReplicaObservation] = {}

    async def final(self, workload_id: str, replica_index: int = 0) -> ReplicaObservation:
        key = (workload_id, replica_index)
        async with asyncio.timeout(GUARD_S):
            while key not in self._latest or self._latest[key].state not in TERMINAL:
                observation = await anext(self._stream)
                self._latest[(observation.workload_id, observation.replica_index)] = observation
        return self._latest[key]


async def wait_for_output(backend: LocalBackend, workload_id: str, text: str, replica_index: int = 0) -> str:
    """Follow the replica's log until `text` appears; the output so far."""
    seen = b""
    async with asyncio.timeout(GUARD_S):
        async for chunk in backend.logs(workload_id, replica_index, follow=True):
            seen += chunk
            if text.encode() in seen:
                return seen.decode()
    raise AssertionError(f"the replica ended without printing {text!r}; its output: {seen.decode()!r}")


async def state_of(backend: LocalBackend, workload_id: str, replica_index: int = 0) -> ReplicaObservation:
    observations = await backend.observe()
    return next(o for o in observations if (o.workload_id, o.replica_index) == (workload_id, replica_index))


def wait_until_gone(pid: int) -> None:
    """For a process this test does not parent (pidfd would be nicer, but this is only test set-up)."""
    deadline = time.monotonic() + GUARD_S
    while read_identity(pid) is not None:
        assert time.monotonic() < deadline, f"process {pid} is still running"
        time.sleep(0.01)


def processes_of(settings: Settings, workload_id: str = "wl-1", replica_index: int = 0) -> list[int]:
    """Host pids of everything a replica's runner started (the sandbox, the command and its children)."""
    status = read_json(RecordStore(settings.runs_dir).status_path(workload_id, replica_index))
    assert status is not None
    children = psutil.Process(status["runner_pid"]).children(recursive=True)
    assert children, "the replica runs no process"
    return [child.pid for child in children]


def release(path: Path) -> None:
    """Create the file a test command waits for (see `wait_for_file_then`)."""
    path.touch()


def wait_for_file_then(path: Path, then: str) -> str:
    """Python code that prints 'ready', waits for `path` to exist, then runs `then`."""
    return (
        "import os, sys, time\n"
        "print('ready', flush=True)\n"
        f"while not os.path.exists({str(path)!r}):\n"
        "    time.sleep(0.01)\n"
        f"{then}\n"
    )
