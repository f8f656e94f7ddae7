"""API keys for the tests' API clients, created in the real PostgreSQL as `tributary keys
create` does (no fake verifier: the API checks them as it checks any key)."""

from __future__ import annotations

from collections.abc import Collection

from streams.api_keys import SCOPES, Scope
from streams.settings import DatabaseSettings
from streams.stores.api_key_store import ApiKeyStore


async def create_key(
    database: DatabaseSettings,
    scopes: Collection[Scope] = SCOPES,
    *,
    rate_per_s: float | None = None,
    burst: int | None = None,
    daily_quota: int | None = None,
) -> str:
    store = ApiKeyStore.from_settings(database)
    try:
        _key, text = await store.create(
            "integration-test",
            scopes,
            rate_per_s=rate_per_s,
            burst=burst,
            daily_quota=daily_quota,
        )
    finally:
        await store.close()
    return text


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
