"""Bringing the database schema up to date (`python -m streams.migrations [revision]`).

Alembic is configured in code from the database settings (`MigrationsProcessSettings.database`,
the same `TRIBUTARY_DATABASE_*` variables the processes read), so there is no second place (an
alembic.ini) where the database URL could disagree with the one the processes use.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from importlib.resources import files

from alembic import command
from alembic.config import Config

from streams.settings import DatabaseSettings, MigrationsProcessSettings
from streams.structured_logs import configure_logging


def alembic_config(database: DatabaseSettings) -> Config:
    config = Config()
    config.set_main_option("script_location", str(files("streams") / "migrations"))
    config.attributes["database"] = database
    return config


def upgrade(database: DatabaseSettings, revision: str = "head") -> None:
    command.upgrade(alembic_config(database), revision)


def main(
    argv: list[str] | None = None,
    migrate: Callable[[DatabaseSettings, str], None] = upgrade,
) -> int:
    """Upgrade to the revision named in `argv` (default: head) with the migrations' root."""
    args = sys.argv[1:] if argv is None else argv
    settings = MigrationsProcessSettings()
    configure_logging(settings.log_level, settings.log_format)
    migrate(settings.database, args[0] if args else "head")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
