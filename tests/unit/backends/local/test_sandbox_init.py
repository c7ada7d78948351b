"""The sandbox's init reports exactly how its command ended (bubblewrap alone reports only a number)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from astrago.backends.local import sandbox_init


def run_init(*command: str) -> tuple[int, dict[str, object]]:
    read, write = os.pipe()
    try:
        done = subprocess.run(
            [sys.executable, "-I", "-S", sandbox_init.__file__, "--report-fd", str(write), "--", *command],
            pass_fds=(write,),
            capture_output=True,
            timeout=30,
        )
    finally:
        os.close(write)
    with os.fdopen(read, "rb") as report:
        return done.returncode, json.loads(report.read())


def test_an_exit_code_is_reported_as_such() -> None:
    assert run_init("sh", "-c", "exit 137") == (137, {"exit_code": 137})


def test_a_signal_is_reported_as_a_signal() -> None:
    assert run_init("sh", "-c", "kill -9 $$") == (137, {"signal": 9})


def test_a_missing_command_is_127_with_the_reason() -> None:
    assert run_init("/no/such/program") == (
        127,
        {"exit_code": 127, "error": "cannot run '/no/such/program': No such file or directory"},
    )


def ignore_sigterm() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def test_the_command_gets_sigterm_back_even_when_the_init_ignores_it() -> None:
    """The runner starts bubblewrap (and so this init) with SIGTERM ignored; the command must not be."""
    code = "import signal; print(signal.getsignal(signal.SIGTERM) == signal.SIG_DFL)"
    read, write = os.pipe()
    try:
        done = subprocess.run(
            [sys.executable, "-I", "-S", sandbox_init.__file__, "--report-fd", str(write), "--",
             sys.executable, "-c", code],
            pass_fds=(write,), capture_output=True, text=True, timeout=30,
            preexec_fn=ignore_sigterm,
        )  # fmt: skip
    finally:
        os.close(write)
        os.close(read)
    assert done.stdout == "True\n"
