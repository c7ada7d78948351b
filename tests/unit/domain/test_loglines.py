"""Splitting a byte stream into lines numbered by the offset after each: resumable at any line."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from astrago.domain.loglines import MAX_LINE_BYTES, LineSplitter, LogLine


def test_lines_carry_the_offset_after_them() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b"one\ntw") == [LogLine(4, "one")]
    assert splitter.feed(b"o\nthree") == [LogLine(8, "two")]
    assert splitter.flush() == [LogLine(13, "three")]
    assert splitter.flush() == []


def test_a_very_long_line_is_cut_and_bad_bytes_are_replaced() -> None:
    splitter = LineSplitter()
    lines = splitter.feed(b"x" * (MAX_LINE_BYTES + 10) + b"\n" + b"\xff\n")
    assert [line.offset for line in lines] == [MAX_LINE_BYTES, MAX_LINE_BYTES + 11, MAX_LINE_BYTES + 13]
    assert [len(line.text) for line in lines] == [MAX_LINE_BYTES, 10, 1]
    assert lines[-1].text == "\ufffd"


@given(st.lists(st.binary(max_size=40), max_size=20), st.data())
def test_resuming_at_any_line_offset_gives_the_rest_exactly_once(
    chunks: list[bytes], data: st.DataObject
) -> None:
    stream = b"".join(chunks)
    splitter = LineSplitter()
    everything = [line for chunk in chunks for line in splitter.feed(chunk)] + splitter.flush()
    if not everything:
        return
    cut = data.draw(st.integers(0, len(everything) - 1))
    resumed = LineSplitter(offset=everything[cut].offset)
    rest = resumed.feed(stream[everything[cut].offset :]) + resumed.flush()
    assert everything[: cut + 1] + rest == everything
