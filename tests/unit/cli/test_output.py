"""Tables at 80 columns in a terminal: only free text is shortened, ids and names stay whole."""

from __future__ import annotations

import os
import re
import sys

import pytest

from astrago.cli.output import Column, OutputFormat, print_table

COLUMNS = (Column("ID"), Column("NAME"), Column("REASON", free_text=True), Column("EXTRA", wide_only=True))
ROW = ["k3x9q2m7vz", "resnet50-train", "no node has 4 free GPUs of model A100-80GB " * 3, "only-wide"]


def _render(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], terminal: bool, fmt: OutputFormat
) -> list[str]:
    monkeypatch.setattr(sys.stdout, "isatty", lambda: terminal)
    monkeypatch.setattr("shutil.get_terminal_size", lambda: os.terminal_size((80, 24)))
    print_table(COLUMNS, [ROW], fmt)
    return re.sub(r"\x1b\[[0-9;]*m", "", capsys.readouterr().out).splitlines()  # without the styles


def test_a_terminal_shortens_only_free_text_to_its_width(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    header, row = _render(monkeypatch, capsys, terminal=True, fmt=OutputFormat.TABLE)
    assert header.split() == ["ID", "NAME", "REASON"]
    assert len(row) <= 80
    assert row.startswith("k3x9q2m7vz  resnet50-train  no node has 4 free GPUs")
    assert row.endswith("…")


def test_a_pipe_and_wide_never_shorten(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _, piped = _render(monkeypatch, capsys, terminal=False, fmt=OutputFormat.TABLE)
    assert piped.endswith(ROW[2].strip())
    header, wide = _render(monkeypatch, capsys, terminal=True, fmt=OutputFormat.WIDE)
    assert header.split() == ["ID", "NAME", "REASON", "EXTRA"]
    assert ROW[2].strip() in wide
    assert wide.endswith("only-wide")
