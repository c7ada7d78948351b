"""CLI errors: printed as one clear message on stderr, never as a traceback."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

err_console = Console(stderr=True, highlight=False, soft_wrap=True)


class CliError(Exception):
    """An error the user can act on. `exit_code` 1 for failures, 2 for bad usage or input."""

    def __init__(self, message: str, exit_code: int = 1, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.hint = hint


def render_error(exc: CliError) -> None:
    # The message is printed as it is: patterns such as [a-z0-9-] must not be read as Rich markup.
    err_console.print(f"[bold red]error:[/] {escape(exc.message)}", markup=True, highlight=False)
    if exc.hint:
        err_console.print(f"[dim]hint:[/] {escape(exc.hint)}")
