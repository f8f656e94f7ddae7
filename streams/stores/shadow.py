"""Shadow copies of materialized views, for a replay to fill and then swap in atomically.

A replay writes a fresh copy of each table of a view (`<table>__replay`, same columns, keys and
indexes) with the same batched statements the worker uses, and the live tables are not touched
until `swap`. The swap is one transaction: it locks the live tables against writes (the worker's
writes wait; readers carry on), lets the replay catch up on what arrived meanwhile, counts the
differences, and makes the live rows the shadow's by writing those differences only (rows
removed, changed, added): the lock lasts as long as the differences take, not the table, and
rows left as they were are not rewritten (nor leave dead tuples behind). An interrupted replay
leaves only its shadow tables behind, which `discard` (or the next replay) drops.

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
from sqlalchemy.dialects.postgresql import insert
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
            diffs = []
            for table in self.tables:
                alone = self.scope is None or self.scope.column in table.key
                diffs.append(await _apply(conn, table, in_scope, alone))
                await conn.execute(sa.text(f"DROP TABLE {_quoted(table.shadow.name)}"))
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


def _copy(source: sa.Table, target: sa.Table) -> sa.Insert:
    names = [c.name for c in target.columns]
    return sa.insert(target).from_select(names, sa.select(*(source.c[n] for n in names)))


@dataclass(frozen=True, slots=True)
class _Pairing:
    """How a live table's rows pair with its shadow's: by key, and differing when a compared
    column does."""

    live: sa.Table
    shadow: sa.Table
    same_key: sa.ColumnElement[bool]
    differ: sa.ColumnElement[bool]

    @classmethod
    def of(cls, table: ShadowTable) -> _Pairing:
        live, shadow = table.live, table.shadow
        same_key = sa.and_(*(live.c[k] == shadow.c[k] for k in table.key))
        live_values = sa.tuple_(*(live.c[c] for c in table.compared))
        shadow_values = sa.tuple_(*(shadow.c[c] for c in table.compared))
        return cls(live, shadow, same_key, live_values.is_distinct_from(shadow_values))

    @property
    def unpaired(self) -> sa.ColumnElement[bool]:
        return ~sa.exists().where(self.same_key)


async def _apply(
    conn: AsyncConnection, table: ShadowTable, in_scope: InScope, empty_means_no_conflict: bool
) -> TableDiff:
    """Make the live rows (in scope) the shadow's, writing only those that differ, and count
    them as they are written (`_diff` without its reads): the rows a replay leaves as they were
    (most, after a repair) are neither rewritten nor left dead in the table, and the write lock
    lasts one pass per kind of difference. A row differing only in an ignored column (when it
    was written) is left alone. `empty_means_no_conflict`: no live row out of scope can hold
    the key of one in scope (no scope, or the scope's column is part of the key)."""
    pair = _Pairing.of(table)
    live, shadow = pair.live, pair.shadow
    keys = [live.c[k] for k in table.key]
    live_rows = await _count(conn, live, in_scope)
    removed = await _written(
        conn, sa.delete(live).where(in_scope(live)).where(pair.unpaired).returning(*keys)
    )
    values = {c.name: shadow.c[c.name] for c in live.columns if c.name not in table.key}
    changed = await _written(
        conn,
        sa.update(live)
        .values(values)
        .where(pair.same_key)
        .where(in_scope(live))
        .where(pair.differ)
        .returning(*keys),
    )
    # Not an anti-join against the table being inserted into: planned as a nested loop (live
    # looks empty after a lost database), it rescans every row inserted so far, each time. The
    # key is unique (each table's primary key or unique constraint): the rows it has are skipped;
    # with none left in scope (a lost database), there is nothing to skip.
    names = [c.name for c in live.columns]
    rows = sa.select(*(shadow.c[n] for n in names)).where(in_scope(shadow))
    adding = insert(live).from_select(names, rows)
    if live_rows - removed[0] > 0 or not empty_means_no_conflict:
        adding = adding.on_conflict_do_nothing(index_elements=table.key)
    added = await _written(conn, adding.returning(*keys))
    return TableDiff(
        table=live.name,
        live_rows=live_rows,
        replayed_rows=live_rows - removed[0] + added[0],
        added=added[0],
        changed=changed[0],
        removed=removed[0],
        examples={"added": added[1], "changed": changed[1], "removed": removed[1]},
    )


async def _written(
    conn: AsyncConnection, statement: sa.Delete | sa.Update | sa.Insert
) -> tuple[int, list[list[str]]]:
    """Run `statement` (returning the keys it wrote): how many rows, and the first keys."""
    done = statement.cte("done")
    count = sa.select(sa.func.count()).select_from(done).scalar_subquery()
    # PostgreSQL runs a data-modifying WITH to completion whatever the LIMIT of the query.
    query = sa.select(count, *done.c).order_by(*done.c).limit(EXAMPLES)
    rows = (await conn.execute(query)).all()
    if not rows:
        return 0, []
    return int(rows[0][0]), [[str(value) for value in row[1:]] for row in rows]


async def _count(conn: AsyncConnection, table: sa.Table, in_scope: InScope) -> int:
    query = sa.select(sa.func.count()).select_from(table).where(in_scope(table))
    return int((await conn.execute(query)).scalar_one())


async def _diff(conn: AsyncConnection, table: ShadowTable, in_scope: InScope) -> TableDiff:
    pair = _Pairing.of(table)
    live, shadow = pair.live, pair.shadow
    added = (
        sa.select(*(shadow.c[k] for k in table.key)).where(in_scope(shadow)).where(pair.unpaired)
    )
    removed = sa.select(*(live.c[k] for k in table.key)).where(in_scope(live)).where(pair.unpaired)
    changed = (
        sa.select(*(shadow.c[k] for k in table.key))
        .select_from(shadow.join(live, pair.same_key))
        .where(in_scope(shadow))
        .where(pair.differ)
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
    return TableDiff(
        table=live.name,
        live_rows=await _count(conn, live, in_scope),
        replayed_rows=await _count(conn, shadow, in_scope),
        examples=examples,
        **counts,
    )
