"""`astrago exec` on Kubernetes through the pod's exec subresource. Without a terminal the command runs
once with the stdin given up front, and its output and exit code come back at the end; with one
(`TtyExecSession`) keys, output and window sizes stream both ways until the command exits."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol

import anyio
from httpx2.websockets import HTTPXWSException

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


# The exec subresource's channels (v4.channel.k8s.io): the first byte of every binary message.
STDIN_CHANNEL, STDOUT_CHANNEL, STDERR_CHANNEL, STATUS_CHANNEL, RESIZE_CHANNEL = 0, 1, 2, 3, 4
EXEC_SUBPROTOCOL = "v4.channel.k8s.io"
LOST_EXIT_CODE = 255  # the connection ended without the command's status (as ssh reports a lost link)
KILLED_EXIT_CODE = 137
_CTRL_D = b"\x04"
# How a stream ends: the server closed it, the network failed, or `kill` closed it from this side.
_CLOSED = (HTTPXWSException, OSError, anyio.ClosedResourceError, anyio.EndOfStream)


class ExecSocket(Protocol):
    async def send_bytes(self, data: bytes) -> None: ...

    async def receive_bytes(self) -> bytes: ...


def resize_message(rows: int, cols: int) -> bytes:
    return bytes([RESIZE_CHANNEL]) + json.dumps({"Width": cols, "Height": rows}).encode()


def exit_code_of(status: bytes) -> int:
    """The command's exit code from the v1.Status on the status channel: Success is 0; a non-zero exit is
    a Failure with reason NonZeroExitCode and the code in its causes; any other failure (the command could
    not start) is 126, as a shell reports a command it cannot run."""
    try:
        parsed = json.loads(status)
    except ValueError:
        return LOST_EXIT_CODE
    if parsed.get("status") == "Success":
        return 0
    if parsed.get("reason") == "NonZeroExitCode":
        for cause in (parsed.get("details") or {}).get("causes") or ():
            if cause.get("reason") == "ExitCode" and str(cause.get("message", "")).isdigit():
                return int(cause["message"])
    return 126


class TtyExecSession:
    """A terminal in the container over the exec subresource: keys on the stdin channel, the terminal's
    output on stdout, window sizes on the resize channel, the exit code from the status channel. The
    connection is opened (and closed, in `kill`) by the task that handles the caller's session."""

    def __init__(self, stack: contextlib.AsyncExitStack, socket: ExecSocket) -> None:
        self._stack = stack
        self._socket = socket
        self._code: int | None = None
        self._ended = asyncio.Event()

    @classmethod
    async def connect(
        cls, connection: contextlib.AbstractAsyncContextManager[ExecSocket], rows: int, cols: int
    ) -> TtyExecSession:
        stack = contextlib.AsyncExitStack()
        socket = await stack.enter_async_context(connection)
        session = cls(stack, socket)
        await session.resize(rows, cols)  # a new terminal starts at the runtime's default size
        return session

    async def output(self) -> AsyncIterator[tuple[ExecStream, bytes]]:
        try:
            while True:
                try:
                    message = await self._socket.receive_bytes()
                except _CLOSED:
                    return
                channel, data = message[:1], message[1:]
                if channel in (bytes([STDOUT_CHANNEL]), bytes([STDERR_CHANNEL])):
                    yield ExecStream.STDOUT, data  # a terminal has one stream
                elif channel == bytes([STATUS_CHANNEL]):
                    self._code = exit_code_of(data)
                    return
        finally:
            self._ended.set()

    async def send(self, data: bytes) -> None:
        with contextlib.suppress(*_CLOSED):
            await self._socket.send_bytes(bytes([STDIN_CHANNEL]) + data)

    async def end_input(self) -> None:
        await self.send(_CTRL_D)  # a terminal has no end of input but the character that means it

    async def resize(self, rows: int, cols: int) -> None:
        with contextlib.suppress(*_CLOSED):
            await self._socket.send_bytes(resize_message(rows, cols))

    async def wait(self) -> int:
        await self._ended.wait()
        return LOST_EXIT_CODE if self._code is None else self._code

    async def kill(self) -> None:
        if self._code is None and not self._ended.is_set():
            self._code = KILLED_EXIT_CODE
        self._ended.set()
        with contextlib.suppress(Exception):  # the socket's task group reports its end as a group
            await self._stack.aclose()
