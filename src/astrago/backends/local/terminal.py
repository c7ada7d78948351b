"""Commands run inside a local replica (`astrago exec`): the replica's own environment and working
directory, read from its running command (/proc/<pid>/environ and cwd), so the session sees exactly what
the workload sees (CUDA_VISIBLE_DEVICES included). With a terminal, a real PTY (ptyprocess): resize,
Ctrl-C and job control behave as in any terminal; without, pipes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

from ptyprocess import PtyProcess

from astrago.backends.base import BackendError, ExecRequest, ExecStream
from astrago.backends.local.plan import LAUNCH_TOKEN_ENV

_READ_BYTES = 65536
SIGNAL_EXIT_BASE = 128


def replica_context(pid: int) -> tuple[dict[str, str], str]:
    """The environment and working directory of the replica's command (process `pid`)."""
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError as exc:
        raise BackendError(f"cannot read the environment of the replica's process {pid}: {exc}") from exc
    env = dict(entry.split("=", 1) for entry in raw.decode(errors="replace").split("\0") if "=" in entry)
    env.pop(LAUNCH_TOKEN_ENV, None)  # else a restarted server could take the session for the replica
    return env, cwd


class PtySession:
    """A command on a pseudo-terminal: one output stream (what a terminal shows)."""

    def __init__(self, process: PtyProcess) -> None:
        self._process = process
        self._chunks: asyncio.Queue[bytes | None] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        loop.add_reader(process.fd, self._readable)
        self._loop = loop

    @classmethod
    def spawn(cls, request: ExecRequest, env: dict[str, str], cwd: str) -> PtySession:
        env = {**env, "TERM": env.get("TERM") or "xterm-256color"}
        try:
            process = PtyProcess.spawn(
                list(request.argv), cwd=cwd, env=env, dimensions=(request.rows, request.cols)
            )
        except (OSError, FileNotFoundError) as exc:
            raise BackendError(f"cannot run {request.argv[0]!r} in the replica: {exc}") from exc
        return cls(process)

    def _readable(self) -> None:
        try:
            data = os.read(self._process.fd, _READ_BYTES)
        except OSError:  # EIO: every holder of the terminal has exited
            data = b""
        if not data:
            self._loop.remove_reader(self._process.fd)
        self._chunks.put_nowait(data or None)

    async def output(self) -> AsyncIterator[tuple[ExecStream, bytes]]:
        while (chunk := await self._chunks.get()) is not None:
            yield ExecStream.STDOUT, chunk

    async def send(self, data: bytes) -> None:
        await asyncio.to_thread(self._process.write, data)

    async def end_input(self) -> None:
        await asyncio.to_thread(self._process.sendeof)

    async def resize(self, rows: int, cols: int) -> None:
        self._process.setwinsize(rows, cols)  # the PTY sends SIGWINCH to its foreground group

    async def wait(self) -> int:
        status = await asyncio.to_thread(self._process.wait)
        if self._process.signalstatus is not None:
            return SIGNAL_EXIT_BASE + int(self._process.signalstatus)
        return int(status)

    async def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._process.pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            self._loop.remove_reader(self._process.fd)
        self._chunks.put_nowait(None)


class PipeSession:
    """A command without a terminal: stdout and stderr kept apart, stdin a pipe."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process

    @classmethod
    async def spawn(cls, request: ExecRequest, env: dict[str, str], cwd: str) -> PipeSession:
        try:
            process = await asyncio.create_subprocess_exec(
                *request.argv,
                cwd=cwd,
                env=env,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as exc:
            raise BackendError(f"cannot run {request.argv[0]!r} in the replica: {exc}") from exc
        return cls(process)

    async def output(self) -> AsyncIterator[tuple[ExecStream, bytes]]:
        queue: asyncio.Queue[tuple[ExecStream, bytes] | None] = asyncio.Queue()

        async def pump(stream: asyncio.StreamReader | None, channel: ExecStream) -> None:
            while stream is not None and (data := await stream.read(_READ_BYTES)):
                queue.put_nowait((channel, data))
            queue.put_nowait(None)

        pumps = [
            asyncio.create_task(pump(self._process.stdout, ExecStream.STDOUT)),
            asyncio.create_task(pump(self._process.stderr, ExecStream.STDERR)),
        ]
        try:
            ended = 0
            while ended < len(pumps):
                item = await queue.get()
                if item is None:
                    ended += 1
                else:
                    yield item
        finally:
            for task in pumps:
                task.cancel()

    async def send(self, data: bytes) -> None:
        if self._process.stdin is not None:
            self._process.stdin.write(data)
            await self._process.stdin.drain()

    async def end_input(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()

    async def resize(self, rows: int, cols: int) -> None:
        return None  # no terminal, nothing to resize

    async def wait(self) -> int:
        code = await self._process.wait()
        return SIGNAL_EXIT_BASE - code if code < 0 else code

    async def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._process.pid, signal.SIGKILL)


class ReplicaBoundSession:
    """An exec session that is killed when its replica ends (a terminal never outlives its workload)."""

    def __init__(self, session: PtySession | PipeSession, replica_ended: asyncio.Event) -> None:
        self._session = session
        self._watch = asyncio.create_task(self._kill_when(replica_ended))

    async def _kill_when(self, replica_ended: asyncio.Event) -> None:
        await replica_ended.wait()
        await self._session.kill()

    def output(self) -> AsyncIterator[tuple[ExecStream, bytes]]:
        return self._session.output()

    async def send(self, data: bytes) -> None:
        await self._session.send(data)

    async def end_input(self) -> None:
        await self._session.end_input()

    async def resize(self, rows: int, cols: int) -> None:
        await self._session.resize(rows, cols)

    async def wait(self) -> int:
        try:
            return await self._session.wait()
        finally:
            self._watch.cancel()

    async def kill(self) -> None:
        self._watch.cancel()
        await self._session.kill()
