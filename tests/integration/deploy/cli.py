"""Running `astrago deploy ...` in-process, as a user would type it."""

from __future__ import annotations

from dataclasses import dataclass

from typer.testing import CliRunner

from astrago.cli.errors import CliError
from astrago.cli.main import app


@dataclass(frozen=True)
class Outcome:
    exit_code: int
    stdout: str
    stderr: str
    error: CliError | None

    @property
    def message(self) -> str:
        """The one-line error a user sees (with its hint), or ''."""
        if self.error is None:
            return ""
        return f"{self.error.message} {self.error.hint or ''}".strip()


def astrago(*args: str, input: str | None = None) -> Outcome:
    result = CliRunner().invoke(app, list(args), input=input)
    error = result.exception if isinstance(result.exception, CliError) else None
    if result.exception is not None and error is None and not isinstance(result.exception, SystemExit):
        raise result.exception
    exit_code = error.exit_code if error is not None else result.exit_code
    return Outcome(exit_code, result.stdout, result.stderr, error)
