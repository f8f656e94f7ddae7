"""Shadow copies of materialized views, for a replay to fill and then swap in atomically.

A replay writes a fresh copy of each table of a view (`<table>__replay`, same columns, keys and
indexes) with the same batched statements the worker uses, and the live tables are not touched
until `swap`. The swap is one transaction: it locks the live tables against writes (the worker's
writes wait; readers carry on), lets the replay catch up on what arrived meanwhile, counts the
differences, and replaces the live rows by the shadow's. An interrupted replay leaves only its
shadow tables behind, which `discard` (or the next replay) drops.

A replay of some keys only (`KeyScope`: sessions since a time rebuild the users with records
since then) compares and replaces only the live rows of those keys; the others are left as they
are, whatever the worker writes to them meanwhile. The keys go into a temporary table of the
swap's (or the diff's) own transaction, which PostgreSQL drops with it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from streams.stores.database import translate_database_errors

SUFFIX = "__replay"
# Keys named in a report, per kind of difference.
EXAMPLES = 5
# Keys of a scope inserted per statement.
SCOPE_CHUNK = 5000


@dataclass(frozen=True, slots=True)
class ShadowTable:
    """A live table and its shadow; `key` identifies a row, `ignored` columns are not compared
    (when a row was written says nothing about what it holds)."""

    live: sa.Table
    key: tuple[str, ...]
    ignored: tuple[str, ...] = ("materialized_at",)

    @property
    def shadow(self) -> sa.Table:
        return self.live.to_metadata(sa.MetaData(), name=self.live.name + SUFFIX)

    @property
    def compared(self) -> list[str]:
        return [c.name for c in self.live.columns if c.name not in self.key + self.ignored]


@dataclass(frozen=True, slots=True)
class TableDiff:
    table: str
    live_rows: int
    replayed_rows: int
    added: int
    changed: int
    removed: int
    examples: dict[str, list[list[str]]]

    def as_json(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "live_rows": self.live_rows,
            "replayed_rows": self.replayed_rows,
            "added": self.added,
            "changed": self.changed,
            "removed": self.removed,
            "examples": self.examples,
        }


@dataclass(frozen=True, slots=True)
class KeyScope:
    """The rows a replay rebuilds: those whose `column` (in every table of the view) is one of
    `keys`."""

    column: str
    keys: Collection[str]


def _scope_table() -> sa.Table:
    """A fresh definition each time: a temporary table lives in one transaction."""
    return sa.Table(
        "replay_scope",
        sa.MetaData(),
        sa.Column("key", sa.Text, primary_key=True),
        prefixes=["TEMPORARY"],
        postgresql_on_commit="DROP",
    )


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class ShadowViews:
    def __init__(
        self, engine: AsyncEngine, tables: Sequence[ShadowTable], scope: KeyScope | None = None
    ) -> None:
        self._engine = engine
        self.tables = tuple(tables)
        self.scope = scope

    async def prepare(self) -> None:
        """Fresh, empty shadow tables (dropping what an interrupted replay left)."""
        async with translate_database_errors(), self._engine.begin() as conn:
            for table in self.tables:
                shadow = _quoted(table.shadow.name)
                await conn.execute(sa.text(f"DROP TABLE IF EXISTS {shadow}"))
                live = _quoted(table.live.name)
                await conn.execute(sa.text(f"CREATE TABLE {shadow} (LIKE {live} INCLUDING ALL)"))

    async def copy_live(self) -> None:
        """Start the shadows from the live rows (a replay of a fold that may start anywhere)."""
        async with translate_database_errors(), self._engine.begin() as conn:
            for table in self.tables:
                await conn.execute(_copy(table.live, table.shadow))

    async def discard(self) -> None:
        async with translate_database_errors(), self._engine.begin() as conn:
            for table in self.tables:
                await conn.execute(sa.text(f"DROP TABLE IF EXISTS {_quoted(table.shadow.name)}"))

    async def swap(self, catch_up: Callable[[], Awaitable[None]]) -> list[TableDiff]:
        """Lock the live tables, await `catch_up` (the replay reading to the end once more),
        report the differences and replace the live rows by the shadows', in one transaction."""
        async with translate_database_errors(), self._engine.begin() as conn:
            for table in self.tables:
                # Blocks the worker's writes, not the API's reads, until the commit.
                live = _quoted(table.live.name)
                await conn.execute(sa.text(f"LOCK TABLE {live} IN SHARE ROW EXCLUSIVE MODE"))
            await catch_up()
            in_scope = await self._scope(conn)
            diffs = [await _diff(conn, table, in_scope) for table in self.tables]
            for table in self.tables:
                shadow = table.shadow
                await conn.execute(sa.delete(table.live).where(in_scope(table.live)))
                await conn.execute(_copy(shadow, table.live, in_scope(shadow)))
                await conn.execute(sa.text(f"DROP TABLE {_quoted(shadow.name)}"))
        return diffs

    async def diff(self) -> list[TableDiff]:
        """The differences the swap would make, without making them."""
        async with translate_database_errors(), self._engine.begin() as conn:
            in_scope = await self._scope(conn)
            return [await _diff(conn, table, in_scope) for table in self.tables]

    async def _scope(self, conn: AsyncConnection) -> InScope:
        """Which rows of a table (live or shadow) the replay covers: every row, or those of the
        scope's keys (inserted into a temporary table of `conn`'s transaction)."""
        scope = self.scope
        if scope is None:
            return _every_row
        keys = _scope_table()
        await conn.run_sync(lambda sync: keys.create(sync))
        ordered = sorted(scope.keys)
        for start in range(0, len(ordered), SCOPE_CHUNK):
            chunk = ordered[start : start + SCOPE_CHUNK]
            await conn.execute(sa.insert(keys), [{"key": key} for key in chunk])
        listed = sa.select(keys.c.key)
        return lambda table: table.c[scope.column].in_(listed)


InScope = Callable[[sa.Table], sa.ColumnElement[bool]]


def _every_row(_table: sa.Table) -> sa.ColumnElement[bool]:
    return sa.true()


def _copy(
    source: sa.Table, target: sa.Table, where: sa.ColumnElement[bool] | None = None
) -> sa.Insert:
    names = [c.name for c in target.columns]
    rows = sa.select(*(source.c[n] for n in names))
    return sa.insert(target).from_select(names, rows if where is None else rows.where(where))


async def _diff(conn: AsyncConnection, table: ShadowTable, in_scope: InScope) -> TableDiff:
    live, shadow = table.live, table.shadow
    keys_equal = sa.and_(*(live.c[k] == shadow.c[k] for k in table.key))
    live_values = sa.tuple_(*(live.c[c] for c in table.compared))
    shadow_values = sa.tuple_(*(shadow.c[c] for c in table.compared))
    added = (
        sa.select(*(shadow.c[k] for k in table.key))
        .where(in_scope(shadow))
        .where(~sa.exists().where(keys_equal))
    )
    removed = (
        sa.select(*(live.c[k] for k in table.key))
        .where(in_scope(live))
        .where(~sa.exists().where(keys_equal))
    )
    changed = (
        sa.select(*(shadow.c[k] for k in table.key))
        .select_from(shadow.join(live, keys_equal))
        .where(in_scope(shadow))
        .where(live_values.is_distinct_from(shadow_values))
    )
    counts: dict[str, int] = {}
    examples: dict[str, list[list[str]]] = {}
    for kind, query in (("added", added), ("changed", changed), ("removed", removed)):
        subquery = query.subquery()
        counts[kind] = int(
            (await conn.execute(sa.select(sa.func.count()).select_from(subquery))).scalar_one()
        )
        ordered = query.order_by(*(sa.text(str(i + 1)) for i in range(len(table.key))))
        rows = (await conn.execute(ordered.limit(EXAMPLES))).all()
        examples[kind] = [[str(value) for value in row] for row in rows]
    live_rows = (
        await conn.execute(sa.select(sa.func.count()).select_from(live).where(in_scope(live)))
    ).scalar_one()
    replayed = (
        await conn.execute(sa.select(sa.func.count()).select_from(shadow).where(in_scope(shadow)))
    ).scalar_one()
    return TableDiff(
        table=live.name,
        live_rows=int(live_rows),
        replayed_rows=int(replayed),
        examples=examples,
        **counts,
    )
