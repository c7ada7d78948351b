"""The change feed cursor: no change is skipped when transactions commit out of id order."""

from __future__ import annotations

from astrago.domain.changes import GAP_PATIENCE_S, FeedCursor


def test_advances_to_the_highest_id_delivered() -> None:
    cursor = FeedCursor(last=3)
    cursor.advance([4, 5, 6], now=0.0)
    assert cursor.last == 6
    assert cursor.gaps == {}


def test_an_id_missing_below_a_delivered_one_is_asked_for_again_until_it_commits() -> None:
    cursor = FeedCursor(last=10)
    cursor.advance([11, 13], now=0.0)  # 12 was allocated but its transaction has not committed yet
    assert cursor.last == 13
    assert set(cursor.gaps) == {12}
    cursor.advance([12], now=1.0)  # it committed late: delivered, no longer missing
    assert cursor.last == 13
    assert cursor.gaps == {}


def test_a_gap_that_never_fills_is_a_rollback_and_is_given_up_after_its_patience() -> None:
    cursor = FeedCursor(last=0)
    cursor.advance([2], now=0.0)
    cursor.advance([], now=GAP_PATIENCE_S / 2)
    assert set(cursor.gaps) == {1}
    cursor.advance([], now=GAP_PATIENCE_S + 1)
    assert cursor.gaps == {}


def test_nothing_delivered_changes_nothing() -> None:
    cursor = FeedCursor(last=7)
    cursor.advance([], now=0.0)
    assert (cursor.last, cursor.gaps) == (7, {})
