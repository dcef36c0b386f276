"""The statements every command runs, compiled once and, on SQLite, run on the driver.

SQLAlchemy runs each statement through an execution context, a result object and, under
asyncio, a greenlet: about a hundred microseconds a statement on this project's machines,
where SQLite itself takes five. A registration runs six statements, so that was most of its
time (ADR 016). `Prepared` keeps the statement a Core construct, the one source of its SQL
like every other statement's, has SQLAlchemy compile it once for the dialect, with the bind
and result processors of its columns' types (JSON, dates), then runs it on the driver's own
connection, in the same transaction: sqlite3's, or asyncpg's (which prepares it once per
connection and keeps it): on PostgreSQL that takes a third off a registration's CPU.

Rows come back as plain tuples, in the order of the statement's columns.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.sql.expression import Executable, Select

from score_chassis.database import asyncpg_of, sqlite_error, sqlite_of

Params = Mapping[str, Any]
Processor = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    binds: tuple[tuple[str, Processor | None], ...]
    """Each `?` of `sql`, in order: the parameter's name and its type's processor."""
    results: tuple[Processor | None, ...]

    def arguments(self, params: Params) -> tuple[Any, ...]:
        return tuple(
            params[name] if process is None else process(params[name])
            for name, process in self.binds
        )

    def rows(self, cursor: sqlite3.Cursor) -> list[tuple[Any, ...]]:
        if not self.results:
            return []
        return self.processed(cursor.fetchall())

    def processed(self, rows: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
        results = self.results
        if not results:
            return []
        return [
            tuple(
                value if process is None or value is None else process(value)
                for value, process in zip(row, results, strict=True)
            )
            for row in rows
        ]


class Prepared:
    """A statement run with named parameters: `await Prepared(stmt).rows(conn, {...})`."""

    def __init__(self, statement: Executable) -> None:
        if not isinstance(statement, Select | UpdateBase):
            raise TypeError(f"a select, insert, update or delete, not {type(statement).__name__}")
        self.statement = statement
        self._compiled: dict[tuple[str, frozenset[str]], _Compiled] = {}

    async def rows(self, conn: AsyncConnection, params: Params) -> list[tuple[Any, ...]]:
        """The rows the statement returns (none for a write without RETURNING)."""
        driver = sqlite_of(conn)
        if driver is None:
            adapted = asyncpg_of(conn)
            if adapted is None:
                result = await conn.execute(self.statement, dict(params))
                return [tuple(row) for row in result] if result.returns_rows else []
            compiled = self._for(conn.dialect, params)
            return compiled.processed(await adapted.fetch(compiled.sql, compiled.arguments(params)))
        compiled = self._for(conn.dialect, params)
        arguments = compiled.arguments(params)
        try:
            return compiled.rows(driver.execute(compiled.sql, arguments))
        except sqlite3.Error as error:
            raise sqlite_error(compiled.sql, error) from error

    async def run_many(self, conn: AsyncConnection, many: Sequence[Params]) -> None:
        """Run a write once per set of parameters (all with the same names)."""
        if not many:
            return
        driver = sqlite_of(conn)
        if driver is None:
            await conn.execute(self.statement, [dict(params) for params in many])
            return
        compiled = self._for(conn.dialect, many[0])
        try:
            driver.executemany(compiled.sql, [compiled.arguments(params) for params in many])
        except sqlite3.Error as error:
            raise sqlite_error(compiled.sql, error) from error

    def _for(self, dialect: Dialect, params: Params) -> _Compiled:
        key = (dialect.name, frozenset(params))
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self._compiled[key] = self._compile(dialect, key[1])
        return compiled

    def _compile(self, dialect: Dialect, names: frozenset[str]) -> _Compiled:
        column_keys = sorted(names) if isinstance(self.statement, UpdateBase) else None
        compiled = self.statement.compile(dialect=dialect, column_keys=column_keys)
        order = compiled.positiontup or []
        if missing := set(order) - names:
            # A column default SQLAlchemy would fill in at execution: this path does not.
            raise TypeError(f"parameters missing: {', '.join(sorted(missing))}")
        binds = tuple(
            (name, compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect))
            for name in order
        )
        results = tuple(
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            for column in _returned(self.statement)
        )
        return _Compiled(compiled.string, binds, results)


def _returned(statement: Select[Any] | UpdateBase) -> list[Any]:
    if isinstance(statement, Select):
        return list(statement.selected_columns)
    return list(statement.exported_columns)  # what RETURNING names; none without it
