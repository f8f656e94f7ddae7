"""`tributary keys create|list|revoke`: the API's keys, straight in PostgreSQL.

`create` prints `{"id", "key", "scopes", ...}`: the key is shown this once (only a hash of its
secret is stored). `list` prints one line per key, never a secret; `revoke` marks a key revoked,
which the API honours within `api.key_cache_s`.
"""

from __future__ import annotations

from collections.abc import Collection

from streams.api_keys import Scope
from streams.cli.errors import UsageError
from streams.cli.output import Output
from streams.stores.api_key_store import ApiKeyStore


async def create_key(
    store: ApiKeyStore,
    name: str,
    scopes: Collection[Scope],
    output: Output,
    *,
    rate_per_s: float | None = None,
    burst: int | None = None,
    daily_quota: int | None = None,
) -> int:
    if (rate_per_s is None) != (burst is None):
        raise UsageError("--rate-per-s and --burst go together")
    key, text = await store.create(
        name, scopes, rate_per_s=rate_per_s, burst=burst, daily_quota=daily_quota
    )
    output.record({"key": text} | key.as_json())
    return 0


async def list_keys(store: ApiKeyStore, output: Output) -> int:
    for key in await store.list_keys():
        output.record(key.as_json())
    return 0


async def revoke_key(store: ApiKeyStore, key_id: str, output: Output) -> int:
    key = await store.revoke(key_id)
    if key is None:
        raise UsageError(f"no API key {key_id!r}")
    output.record(key.as_json())
    return 0
