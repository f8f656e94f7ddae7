"""A migrated PostgreSQL database of a test module's own, for tests whose writes reach every row
of a table (a replay's swap, a purge by age), which other tests share otherwise."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from scripts.own_database import create_database, database_name, drop_database
from streams.settings import DatabaseSettings
from tests.integration.conftest import _run_in_thread


@contextmanager
def own_database(database: DatabaseSettings, prefix: str) -> Iterator[DatabaseSettings]:
    """`database` pointed at a fresh database (`prefix` and a random suffix), migrated; dropped
    afterwards. Created and dropped on a loop of their own, away from the test session's."""
    name = database_name(prefix)
    try:
        yield _run_in_thread(create_database(database, name))
    finally:
        _run_in_thread(drop_database(database, name))
