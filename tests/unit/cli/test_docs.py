"""docs/cli.md shows every command with an example."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from typer.main import get_command

from astrago.cli.main import build_app

DOCS = Path(__file__).resolve().parents[3] / "docs" / "cli.md"


def _commands(command: Any, prefix: tuple[str, ...] = ()) -> list[str]:
    if not hasattr(command, "list_commands"):
        return [" ".join(prefix)]
    found: list[str] = []
    for name in command.list_commands(None):
        found += _commands(command.get_command(None, name), (*prefix, name))
    return found


def test_every_command_has_an_example_in_docs_cli_md() -> None:
    text = DOCS.read_text()
    examples = {line.strip() for line in text.splitlines() if line.strip().startswith("astrago ")}
    missing = [
        c
        for c in _commands(get_command(build_app()))
        if not any(e.startswith(f"astrago {c} ") or e == f"astrago {c}" for e in examples)
    ]
    assert missing == []
