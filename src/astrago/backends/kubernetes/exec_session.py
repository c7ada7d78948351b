"""`astrago exec` on Kubernetes without a terminal: the exec subresource runs the command once with the
stdin given up front, and its output and exit code come back at the end."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

from astrago.backends.base import ExecStream

RunOnce = Callable[[bytes | None], Awaitable[tuple[int, str, str]]]


class OneShotExecSession:
    """Input is collected until `end_input`; then the command runs and its output is delivered."""

    def __init__(self, run: RunOnce) -> None:
        self._run = run
        self._stdin = bytearray()
        self._result: tuple[int, str, str] | None = None
        self._killed = False

    async def output(self) -> AsyncIterator[tuple[ExecStream, bytes]]:
        _, stdout, stderr = await self._ran()
        if stdout:
            yield ExecStream.STDOUT, stdout.encode()
        if stderr:
            yield ExecStream.STDERR, stderr.encode()

    async def _ran(self) -> tuple[int, str, str]:
        if self._result is None:
            self._result = (137, "", "") if self._killed else await self._run(bytes(self._stdin) or None)
        return self._result

    async def send(self, data: bytes) -> None:
        self._stdin += data

    async def end_input(self) -> None:
        return None  # the command starts when its output is first read

    async def resize(self, rows: int, cols: int) -> None:
        return None

    async def wait(self) -> int:
        return (await self._ran())[0]

    async def kill(self) -> None:
        self._killed = True
