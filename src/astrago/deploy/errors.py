"""The one error type of `astrago.deploy`: it names the file and key at fault so an operator can fix it."""

from __future__ import annotations

from pathlib import Path


class DeployError(Exception):
    """Bad input or a failed step. `source` is the file (or URL) and `key` the dotted key at fault."""

    def __init__(
        self,
        message: str,
        *,
        source: Path | str | None = None,
        key: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.source = str(source) if source is not None else None
        self.key = key
        self.hint = hint
        super().__init__(self.describe())

    def describe(self) -> str:
        where = ": ".join(part for part in (self.source, self.key) if part)
        return f"{where}: {self.message}" if where else self.message
