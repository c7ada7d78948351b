"""How read commands print: `-o wide|json|yaml|name` (kubectl's conventions) and tables fit for both a
terminal and a pipe.

In a pipe a table is never wrapped or cut: one line per row, columns separated by at least two spaces,
so `grep`, `head`, `wc -l` and `awk` see whole rows. In a terminal, only free-text columns (a reason, a
description) are shortened with `…` to fit its width; ids and names are always whole. `-o wide` adds
columns and never shortens anything."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

import typer
import yaml
from pydantic import BaseModel
from rich.console import Console
from rich.text import Text

from astrago.cli.errors import CliError

GAP = "  "
MIN_FREE_WIDTH = 12


class OutputFormat(StrEnum):
    TABLE = "table"
    WIDE = "wide"
    JSON = "json"
    YAML = "yaml"
    NAME = "name"


OutputOpt = Annotated[
    OutputFormat | None,
    typer.Option(
        "--output", "-o", help="wide (every column, nothing shortened), json, yaml or name (kind/id per line)"
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="the same as -o json")]


def chosen_format(output: OutputFormat | None, json_alias: bool) -> OutputFormat:
    if json_alias and output not in (None, OutputFormat.JSON):
        raise CliError(f"--json and -o {output} contradict each other; choose one", exit_code=2)
    return OutputFormat.JSON if json_alias else (output or OutputFormat.TABLE)


def plain(data: Any) -> Any:
    """API models (and lists or dicts of them) as JSON-compatible data."""
    if isinstance(data, BaseModel):
        return data.model_dump(mode="json")
    if isinstance(data, list | tuple):
        return [plain(item) for item in data]
    if isinstance(data, dict):
        return {key: plain(value) for key, value in data.items()}
    return data


def print_data(data: Any, fmt: OutputFormat) -> None:
    """JSON or YAML of `data` on stdout, for scripts."""
    value = plain(data)
    if fmt is OutputFormat.YAML:
        sys.stdout.write(yaml.safe_dump(value, sort_keys=False, allow_unicode=True))
    else:
        sys.stdout.write(json.dumps(value, indent=2, default=str, ensure_ascii=False) + "\n")


def print_names(kind: str, names: Sequence[str]) -> None:
    for name in names:
        sys.stdout.write(f"{kind}/{name}\n")


def strip_kind(kind: str, reference: str) -> str:
    """Commands that take an id also take the `kind/id` that `-o name` prints."""
    prefix = f"{kind}/"
    return reference[len(prefix) :] if reference.startswith(prefix) else reference


@dataclass(frozen=True, slots=True)
class Column:
    title: str
    free_text: bool = False  # may be shortened to fit a terminal; everything else is printed whole
    wide_only: bool = False  # shown with -o wide only


@dataclass(frozen=True, slots=True)
class Cell:
    text: str
    style: str | None = None


Row = Sequence[str | Cell]


def _cell(value: str | Cell) -> Cell:
    return value if isinstance(value, Cell) else Cell(value)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def print_table(
    columns: Sequence[Column], rows: Sequence[Row], fmt: OutputFormat = OutputFormat.TABLE
) -> None:
    terminal = sys.stdout.isatty()
    lines = table_lines(columns, rows, fmt, terminal=terminal, width=shutil.get_terminal_size().columns)
    console = Console(highlight=False, no_color=not terminal, width=None if terminal else 1 << 20)
    for line in lines:
        if terminal:
            console.print(line, crop=False, soft_wrap=True)
        else:
            sys.stdout.write(line.plain.rstrip() + "\n")


def table_lines(
    columns: Sequence[Column], rows: Sequence[Row], fmt: OutputFormat, *, terminal: bool, width: int
) -> list[Text]:
    """The header and one line per row, fitted to `width` in a terminal (styled there, plain otherwise)."""
    wide = fmt is OutputFormat.WIDE
    shown = [i for i, column in enumerate(columns) if wide or not column.wide_only]
    header = [Cell(columns[i].title) for i in shown]
    body = [[_cell(row[i]) for i in shown] for row in rows]
    body = [[Cell(_one_line(c.text) or "-", c.style) for c in row] for row in body]
    widths = [max(len(r[k].text) for r in [header, *body]) for k in range(len(shown))]
    if terminal and not wide:
        widths = _fit(widths, [columns[i].free_text for i in shown], width)
    lines = []
    for index, row in enumerate([header, *body]):
        line = Text(no_wrap=True, overflow="ignore", end="")
        for k, cell in enumerate(row):
            last = k == len(row) - 1
            text = cell.text if len(cell.text) <= widths[k] else cell.text[: max(widths[k] - 1, 0)] + "…"
            style = "bold" if index == 0 and terminal else (cell.style if terminal else None)
            line.append(text, style=style)
            if not last:
                line.append(" " * (widths[k] - len(text)) + GAP)
        lines.append(line)
    return lines


def _fit(widths: list[int], free: list[bool], limit: int) -> list[int]:
    """Shorten free-text columns, widest first, until the row fits `limit` (never below a readable
    minimum: a row that still does not fit is longer than the terminal, not cut)."""
    fitted = list(widths)
    total = sum(fitted) + len(GAP) * (len(fitted) - 1)
    while total > limit:
        candidates = [k for k in range(len(fitted)) if free[k] and fitted[k] > MIN_FREE_WIDTH]
        if not candidates:
            break
        widest = max(candidates, key=lambda k: fitted[k])
        fitted[widest] -= 1
        total -= 1
    return fitted


def emit(
    data: Any,
    fmt: OutputFormat,
    *,
    kind: str,
    names: Callable[[], Sequence[str]],
    table: Callable[[OutputFormat], None],
) -> None:
    """The one place a read command's format is chosen."""
    if fmt in (OutputFormat.JSON, OutputFormat.YAML):
        print_data(data, fmt)
    elif fmt is OutputFormat.NAME:
        print_names(kind, names())
    else:
        table(fmt)
