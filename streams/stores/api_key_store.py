"""The `api_keys` table: keys created and revoked by `tributary keys`, read by the API.

Reads are one indexed point lookup by key id; the API caches what it read for a few seconds
(`api.access`), so a request normally costs no round trip here.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncEngine

from streams.api_keys import ApiKey, Scope, hash_secret, new_key
from streams.settings import DatabaseSettings
from streams.stores.database import create_engine, translate_database_errors
from streams.stores.order_store import metadata

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("key_id", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("secret_hash", sa.LargeBinary, nullable=False),
    sa.Column("scopes", ARRAY(sa.Text), nullable=False),
    sa.Column("rate_per_s", sa.Float),
    sa.Column("burst", sa.Integer),
    sa.Column("daily_quota", sa.Integer),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True)),
)


def _key(row: Any) -> ApiKey:
    return ApiKey(
        id=row["key_id"],
        name=row["name"],
        scopes=frozenset(cast(list[Scope], row["scopes"])),
        secret_hash=bytes(row["secret_hash"]),
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
        rate_per_s=row["rate_per_s"],
        burst=row["burst"],
        daily_quota=row["daily_quota"],
    )


class ApiKeyStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @classmethod
    def from_settings(cls, database: DatabaseSettings) -> ApiKeyStore:
        return cls(create_engine(database))

    async def create(
        self,
        name: str,
        scopes: Collection[Scope],
        *,
        rate_per_s: float | None = None,
        burst: int | None = None,
        daily_quota: int | None = None,
    ) -> tuple[ApiKey, str]:
        """Store a new key; returns it and the key text, which is never stored nor shown again."""
        presented, text = new_key()
        key = ApiKey(
            id=presented.id,
            name=name,
            scopes=frozenset(scopes),
            secret_hash=hash_secret(presented.secret),
            created_at=datetime.now(UTC),
            rate_per_s=rate_per_s,
            burst=burst,
            daily_quota=daily_quota,
        )
        row = {
            "key_id": key.id,
            "name": key.name,
            "secret_hash": key.secret_hash,
            "scopes": sorted(key.scopes),
            "rate_per_s": rate_per_s,
            "burst": burst,
            "daily_quota": daily_quota,
            "created_at": key.created_at,
        }
        async with translate_database_errors(), self._engine.begin() as conn:
            await conn.execute(api_keys.insert().values(row))
        return key, text

    async def get(self, key_id: str) -> ApiKey | None:
        query = sa.select(api_keys).where(api_keys.c.key_id == key_id)
        async with translate_database_errors(), self._engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        return None if row is None else _key(row)

    async def list_keys(self) -> list[ApiKey]:
        query = sa.select(api_keys).order_by(api_keys.c.created_at, api_keys.c.key_id)
        async with translate_database_errors(), self._engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_key(row) for row in rows]

    async def revoke(self, key_id: str) -> ApiKey | None:
        """Mark the key revoked (kept for the record); None when there is no such key. Revoking
        twice keeps the first time."""
        now = datetime.now(UTC)
        statement = (
            api_keys.update()
            .where(api_keys.c.key_id == key_id)
            .values(revoked_at=sa.func.coalesce(api_keys.c.revoked_at, now))
        )
        async with translate_database_errors(), self._engine.begin() as conn:
            await conn.execute(statement)
        return await self.get(key_id)

    async def close(self) -> None:
        await self._engine.dispose()
