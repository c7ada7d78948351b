"""Log output as numbered lines: each line is identified by the byte offset just after it in the replica's
log, so a reader that reconnects with the last offset it saw resumes exactly there (no line lost or
doubled), whichever server process answers."""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_LINE_BYTES = 64 * 1024  # a longer run without a newline is cut into lines of this size


@dataclass(frozen=True, slots=True)
class LogLine:
    offset: int  # byte offset just after this line (and its newline) in the replica's log
    text: str  # without the newline; undecodable bytes replaced


@dataclass(slots=True)
class LineSplitter:
    """Turns chunks of a byte stream that starts at `offset` into complete lines."""

    offset: int = 0
    _pending: bytearray = field(default_factory=bytearray)

    def feed(self, chunk: bytes) -> list[LogLine]:
        lines: list[LogLine] = []
        self._pending += chunk
        start = 0
        while True:
            end = self._pending.find(b"\n", start, start + MAX_LINE_BYTES + 1)
            if end >= 0 and end - start <= MAX_LINE_BYTES:
                lines.append(self._line(start, end, end + 1))
                start = end + 1
            elif len(self._pending) - start > MAX_LINE_BYTES:  # no newline in sight: cut the line here
                lines.append(self._line(start, start + MAX_LINE_BYTES, start + MAX_LINE_BYTES))
                start += MAX_LINE_BYTES
            else:
                break
        del self._pending[:start]
        return lines

    def flush(self) -> list[LogLine]:
        """The last line of a finished log, if it has no newline."""
        if not self._pending:
            return []
        line = self._line(0, len(self._pending), len(self._pending))
        self._pending.clear()
        return [line]

    def _line(self, start: int, text_end: int, consumed_end: int) -> LogLine:
        text = bytes(self._pending[start:text_end]).decode("utf-8", "replace")
        self.offset += consumed_end - start
        return LogLine(offset=self.offset, text=text)
