"""The `astrago` command: one Typer app; each area registers its commands from its own module.

Only the area a command belongs to is imported (the scheduler, deploy and GPU areas pull in NumPy,
Jinja and more), so `astrago ps` starts fast; `--help` and unknown commands load every area."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

import typer

from astrago.cli.errors import CliError, render_error

AREAS = (
    "server", "admin", "client", "sim", "gpu", "deploy", "volumes", "interactive", "monitor", "alerts",
    "cordons", "usage",
)  # fmt: skip
AREA_OF_COMMAND = {
    "server": "server",
    "admin": "admin",
    "sim": "sim",
    "gpu": "gpu",
    "gpu-exporter": "gpu",
    "deploy": "deploy",
    "volume": "volumes",
    "upload": "volumes",
    "download": "volumes",
    "open": "interactive",
    "exec": "interactive",
    "service": "interactive",
    "node": "cordons",
    "top": "monitor",
    "alert": "alerts",
    "keep": "alerts",
    "usage": "usage",
}
CLIENT_COMMANDS = {
    "login", "whoami", "run", "ps", "describe", "logs", "wait", "cancel", "nodes", "audit",
    "user", "workspace", "quota", "token", "logout", "passwd",
}  # fmt: skip


def _areas_for(argv: Sequence[str]) -> Sequence[str]:
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    if command in AREA_OF_COMMAND:
        return (AREA_OF_COMMAND[command],)
    if command in CLIENT_COMMANDS:
        return ("client",)
    return AREAS


def _root() -> None:
    """AstraGo: share GPUs fairly between ML teams, run and watch their workloads."""


def build_app(argv: Sequence[str] = ()) -> typer.Typer:
    app = typer.Typer(
        name="astrago",
        help="AstraGo: share GPUs fairly between ML teams, run and watch their workloads.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=True,  # astrago --install-completion / --show-completion
    )
    # A callback keeps the app a command group even when one area registers a single command.
    app.callback()(_root)
    for area in _areas_for(argv):
        importlib.import_module(f"astrago.cli.{area}").register(app)
    return app


def main() -> None:
    try:
        build_app(sys.argv[1:])(prog_name="astrago")
    except CliError as exc:
        render_error(exc)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)


def __getattr__(name: str) -> typer.Typer:
    """`from astrago.cli.main import app` gives the complete app (for tests and documentation tools)."""
    if name == "app":
        return build_app()
    raise AttributeError(name)


if __name__ == "__main__":
    main()
