"""PID 1 of a replica's sandbox: `python -I -S sandbox_init.py --report-fd N [--uid U --gid G] -- CMD...`.

bubblewrap starts this as the first process of the sandbox's PID namespace (`--as-pid-1`), still with
the sandbox's root identity, and it:
- starts the command as the workload's unprivileged uid/gid (with no supplementary groups) when asked,
  with SIGTERM/SIGINT/SIGHUP back at their default action: the runner outside spawns bubblewrap with
  them ignored, so that a stop signal sent to the whole process group reaches the command but neither
  bubblewrap nor this init (either dying would kill the command before its grace period);
- reaps every orphan of the namespace, as an init must;
- when the command ends, writes how it ended (exit code or signal, as JSON) to the report fd, so the
  runner outside can tell `exit(137)` from a SIGKILL (bubblewrap itself reports only an exit code);
- exits, which makes the kernel kill whatever else still runs in the namespace, including processes
  that left the command's process group.

A job cannot kill this process: signals from inside a PID namespace never reach its init unless the
init handles them, and it handles none. Standard library only, like the runner."""

from __future__ import annotations

import argparse
import errno
import json
import os
import signal
import subprocess
import sys

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
SIGNAL_EXIT_BASE = 128


def _default_stop_signals() -> None:
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_DFL)


def _report(fd: int, report: dict[str, object]) -> None:
    try:
        os.write(fd, json.dumps(report).encode())
    except OSError:
        pass  # the runner is gone; --die-with-parent ends this sandbox anyway
    finally:
        os.close(fd)


def run(command: list[str], report_fd: int, uid: int | None, gid: int | None) -> int:
    try:
        child = subprocess.Popen(
            command,
            preexec_fn=_default_stop_signals,  # single-threaded here, so preexec_fn is safe
            user=uid,
            group=gid,
            extra_groups=[] if uid is not None else None,
            stdin=subprocess.DEVNULL,
        )
    except OSError as exc:
        code = 127 if exc.errno == errno.ENOENT else 126  # as a shell reports them
        message = f"cannot run {command[0]!r}: {exc.strerror}"
        sys.stderr.write(f"[astrago] {message}\n")
        _report(report_fd, {"exit_code": code, "error": message})
        return code
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:  # cannot happen while the command runs; be safe anyway
            return 1
        if pid == child.pid:
            break
    if os.WIFSIGNALED(status):
        _report(report_fd, {"signal": os.WTERMSIG(status)})
        return SIGNAL_EXIT_BASE + os.WTERMSIG(status)
    code = os.waitstatus_to_exitcode(status)
    _report(report_fd, {"exit_code": code})
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sandbox_init.py")
    parser.add_argument("--report-fd", type=int, required=True)
    parser.add_argument("--uid", type=int, default=None)
    parser.add_argument("--gid", type=int, default=None)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given after --")
    return run(command, args.report_fd, args.uid, args.gid)


if __name__ == "__main__":
    sys.exit(main())
