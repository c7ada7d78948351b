"""Keyset pagination over integer ids that fit the narrowest database's INTEGER (32 bits on PostgreSQL and
MariaDB). The API takes cursors up to 2^63 - 1; a cursor beyond every id that can exist selects from the
newest row, and is not sent to a database that would refuse it as out of range."""

from __future__ import annotations

from sqlalchemy import ColumnElement
from sqlalchemy.orm import InstrumentedAttribute

INTEGER_MAX = 2**31 - 1


def older_than(column: InstrumentedAttribute[int], cursor: int | None) -> ColumnElement[bool] | None:
    """The filter `column < cursor`, or None when it would select every row."""
    if cursor is None or cursor > INTEGER_MAX:
        return None
    return column < cursor
