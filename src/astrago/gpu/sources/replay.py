"""Replays recorded `nvidia-smi` outputs, exactly as stored, for tests, demos and bug reports.

A replay path is one of:
- a `nvidia-smi -q -x` XML file;
- a capture directory of `<state>__<section>.txt` files (the layout of nvidia_gpu_exporter's split
  captures): `<state>__query-q.txt` (`nvidia-smi -q`) or `<state>__query-x.txt` (`-q -x`) is required;
  `*__list-l.txt` (`-L`, any state) and `<state>__pmon-per-process-monitor.txt` are joined when present;
- a single capture file holding those sections under `# <state> :: <title>` banners.

`state` picks the state; the default is the last one (capture order for a capture file, name order for a
directory). The files are re-read on every reading, so editing them changes the next collection."""

from __future__ import annotations

import re
from pathlib import Path

from astrago.gpu.mig import apply_listing
from astrago.gpu.model import SourceReading
from astrago.gpu.sources.base import SourceFailed
from astrago.gpu.sources.smi_parsers import (
    SmiParseError,
    apply_pmon,
    parse_list,
    parse_pmon,
    parse_query_text,
    parse_query_xml,
)

QUERY_TEXT = "query-q"
QUERY_XML = "query-x"
LIST = "list-l"
PMON = "pmon-per-process-monitor"
_BANNER = re.compile(r"^# (?P<state>[\w.-]+) :: (?P<title>.+?)\s*$")
_RULE = "#" * 40


class ReplayError(ValueError):
    """The replay path or state does not hold a recording this source can read."""


def section_slug(title: str) -> str:
    """The file name a capture section gets when split: "query (-q)" → "query-q" (at most 40 characters)."""
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:40]


def split_capture(text: str) -> dict[tuple[str, str], str]:
    """Sections of one capture file, keyed by (state, section slug), in file order."""
    sections: dict[tuple[str, str], str] = {}
    lines = text.splitlines(keepends=True)
    current: tuple[str, str] | None = None
    body: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        banner = _BANNER.match(line) if i > 0 and lines[i - 1].startswith(_RULE) else None
        if banner:
            if current is not None:
                sections[current] = _strip_section(body)
            current, body = (banner["state"], section_slug(banner["title"])), []
            # skip the command line(s) and the closing rule of the banner
            while i + 1 < len(lines) and not lines[i + 1].startswith(_RULE):
                i += 1
            i += 2
            continue
        body.append(line)
        i += 1
    if current is not None:
        sections[current] = _strip_section(body)
    return sections


def _strip_section(body: list[str]) -> str:
    # The next banner's opening rule belongs to the next section.
    while body and (not body[-1].strip() or body[-1].startswith(_RULE)):
        body.pop()
    return "".join(body) + "\n"


def _directory_sections(path: Path) -> dict[tuple[str, str], str]:
    sections = {}
    for file in sorted(path.glob("*__*.txt")):
        state, _, section = file.stem.partition("__")
        sections[(state, section)] = file.read_text(errors="replace")
    return sections


class ReplaySource:
    name = "replay"

    def __init__(self, path: str | Path, state: str | None = None) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise ReplayError(f"replay path {self.path} does not exist")
        self.state = state
        self._parse()  # fail now, as a usage error, rather than on the first collection

    def close(self) -> None:
        """Nothing stays open between readings."""

    def states(self) -> list[str]:
        sections = self._sections()
        return [] if sections is None else _states(sections)

    def read(self) -> SourceReading:
        """A file edited into something unreadable fails this reading (and is counted), not the exporter."""
        try:
            return self._parse()
        except ReplayError as exc:
            raise SourceFailed(str(exc)) from exc

    def _parse(self) -> SourceReading:
        try:
            sections = self._sections()
            if sections is None:
                return parse_query_xml(self.path.read_bytes())
            return self._from_sections(sections)
        except SmiParseError as exc:
            raise ReplayError(f"{self.path}: {exc}") from exc
        except OSError as exc:
            raise ReplayError(f"cannot read {self.path}: {exc}") from exc

    def _sections(self) -> dict[tuple[str, str], str] | None:
        """`None` for a plain XML file."""
        if self.path.is_dir():
            return _directory_sections(self.path)
        head = self.path.read_bytes()[:512].lstrip()
        if head.startswith(b"<"):
            return None
        return split_capture(self.path.read_text(errors="replace"))

    def _from_sections(self, sections: dict[tuple[str, str], str]) -> SourceReading:
        states = _states(sections)
        if not states:
            raise ReplayError(
                f"{self.path} holds no <state>__{QUERY_TEXT}.txt or <state>__{QUERY_XML}.txt to replay"
            )
        state = self.state or states[-1]
        if state not in states:
            raise ReplayError(f"{self.path} has no state {state!r}; it has: {', '.join(states)}")
        if (state, QUERY_XML) in sections:
            reading = parse_query_xml(sections[(state, QUERY_XML)])
        else:
            reading = parse_query_text(sections[(state, QUERY_TEXT)])
        listing = sections.get((state, LIST)) or next(
            (text for (_, section), text in sections.items() if section == LIST), None
        )
        if listing is not None:
            reading = apply_listing(reading, parse_list(listing))
        if (state, PMON) in sections:
            reading = apply_pmon(reading, parse_pmon(sections[(state, PMON)]))
        return reading


def _states(sections: dict[tuple[str, str], str]) -> list[str]:
    ordered: list[str] = []
    for state, section in sections:
        if section in (QUERY_TEXT, QUERY_XML) and state not in ordered:
            ordered.append(state)
    return ordered
