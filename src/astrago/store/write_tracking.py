"""Which tables this process has changed: a generation per table, bumped when a transaction that wrote the
table commits, so that caches of rarely written rows know at once when to forget them.

It sees what goes through an ORM session of this process (`session.add`, dirty and deleted objects, and
insert/update/delete statements run with `session.execute`). Writers elsewhere (another replica, an admin
command beside the server) are not seen: a cache built on it must also bound the age of its entries."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Table, event
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

_WRITTEN = "astrago.tables_written"


class TableGenerations:
    def __init__(self) -> None:
        self._generation: defaultdict[str, int] = defaultdict(int)

    def of(self, tables: Iterable[str]) -> tuple[int, ...]:
        """Read this before reading the rows to cache: a commit in between then leaves the entry stale."""
        return tuple(self._generation[table] for table in tables)

    def bump(self, tables: Iterable[str]) -> None:
        for table in tables:
            self._generation[table] += 1


GENERATIONS = TableGenerations()


def _written(session: Session) -> set[str]:
    tables: set[str] = session.info.setdefault(_WRITTEN, set())
    return tables


@event.listens_for(Session, "before_flush")
def _note_flushed(session: Session, _flush: UOWTransaction, _instances: Any) -> None:
    tables = _written(session)
    for instance in (*session.new, *session.dirty, *session.deleted):
        table = getattr(type(instance), "__table__", None)
        if isinstance(table, Table):
            tables.add(table.name)


@event.listens_for(Session, "do_orm_execute")
def _note_statement(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        table = getattr(state.statement, "table", None)
        if isinstance(table, Table):
            _written(state.session).add(table.name)


@event.listens_for(Session, "after_commit")
def _bump_committed(session: Session) -> None:
    GENERATIONS.bump(session.info.pop(_WRITTEN, ()))


@event.listens_for(Session, "after_rollback")
def _forget_rolled_back(session: Session) -> None:
    session.info.pop(_WRITTEN, None)
