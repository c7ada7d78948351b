"""`astrago exec [-i] [-t] ID -- CMD`: a command, or a terminal, in a running workload, over the server's
exec WebSocket. With -t the local terminal is put in raw mode, so keys (Ctrl-C included) go to the remote
command; a window resize is passed on; the exit code is the remote command's."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sys
import termios
import threading
import tty as ttymodes
from collections.abc import Iterator
from typing import Annotated
from urllib.parse import urlencode

import typer
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from astrago.cli.errors import CliError
from astrago.cli.http import ApiClient

STDIN, STDOUT, STDERR = 0, 1, 2


def exec_command(
    workload_id: str,
    command: Annotated[list[str], typer.Argument(help="the command, after --")],
    interactive: Annotated[bool, typer.Option("--interactive", "-i", help="pass stdin on")] = False,
    tty: Annotated[bool, typer.Option("--tty", "-t", help="a terminal (resize, Ctrl-C, colours)")] = False,
    replica: Annotated[int, typer.Option(help="which replica")] = 0,
) -> None:
    """Run a command in a running workload, e.g. `astrago exec -it ID -- bash`."""
    if command[:1] == ["--"]:  # options end at the workload id, so the separator arrives as an argument
        command = command[1:]
    if not command:
        raise CliError("give the command to run after --", exit_code=2, hint="astrago exec -it ID -- bash")
    client = ApiClient.from_config()
    size = _terminal_size()
    query = [("command", part) for part in command]
    query += [
        ("replica", str(replica)),
        ("tty", str(tty).lower()),
        ("rows", str(size.lines)),
        ("cols", str(size.columns)),
    ]
    url = client.url.replace("http", "ws", 1) + f"/api/v1/workloads/{workload_id}/exec?{urlencode(query)}"
    headers = {"Authorization": client.http.headers.get("Authorization", "")}
    try:
        with connect(url, additional_headers=headers, max_size=None, open_timeout=30) as websocket:
            code = _session(websocket, interactive, tty)
    except InvalidStatus as refused:
        raise CliError(_problem(refused)) from None
    except (OSError, TimeoutError) as exc:
        raise CliError(f"cannot reach the AstraGo server at {client.url} ({exc})") from exc
    raise typer.Exit(code)


def _problem(refused: InvalidStatus) -> str:
    try:
        return str(json.loads(refused.response.body or b"{}")["detail"])
    except (ValueError, KeyError):
        return f"the server refused the session ({refused.response.status_code})"


def _session(websocket: ClientConnection, interactive: bool, tty: bool) -> int:
    stdin_fd = sys.stdin.fileno()
    local_tty = tty and os.isatty(stdin_fd)
    with _raw(stdin_fd, local_tty), _forward_resizes(websocket, local_tty):
        if interactive:
            threading.Thread(target=_pump_stdin, args=(websocket, stdin_fd), daemon=True).start()
        else:
            with contextlib.suppress(ConnectionClosed):  # a quick command may be done already
                websocket.send(json.dumps({"type": "eof"}))
        code = 1
        with contextlib.suppress(ConnectionClosed):
            for frame in websocket:
                if isinstance(frame, bytes):
                    os.write(STDERR if frame[0] == STDERR else STDOUT, frame[1:])
                else:
                    message = json.loads(frame)
                    if message.get("type") == "exit":
                        code = int(message["code"])
        return code


def _pump_stdin(websocket: ClientConnection, fd: int) -> None:
    with contextlib.suppress(ConnectionClosed, OSError):
        while data := os.read(fd, 4096):
            websocket.send(bytes([STDIN]) + data)
        websocket.send(json.dumps({"type": "eof"}))


@contextlib.contextmanager
def _raw(fd: int, enabled: bool) -> Iterator[None]:
    if not enabled:
        yield
        return
    saved = termios.tcgetattr(fd)
    ttymodes.setraw(fd)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _terminal_size() -> os.terminal_size:
    """The size of the terminal itself: `shutil.get_terminal_size` would prefer $COLUMNS and $LINES,
    which a shell sets once and never updates when the window is resized."""
    for stream in (sys.stdin, sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            return os.get_terminal_size(stream.fileno())
    return shutil.get_terminal_size()


@contextlib.contextmanager
def _forward_resizes(websocket: ClientConnection, enabled: bool) -> Iterator[None]:
    if not enabled:
        yield
        return

    def send_size() -> None:
        size = _terminal_size()
        with contextlib.suppress(ConnectionClosed):
            websocket.send(json.dumps({"type": "resize", "rows": size.lines, "cols": size.columns}))

    def resized(signum: int, frame: object) -> None:
        # Not from the handler itself: it interrupts the main thread, which may be inside the socket.
        threading.Thread(target=send_size, daemon=True).start()

    previous = signal.signal(signal.SIGWINCH, resized)
    try:
        yield
    finally:
        signal.signal(signal.SIGWINCH, previous)
