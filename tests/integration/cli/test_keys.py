"""`tributary keys create|list|revoke` against the real PostgreSQL, and the keys on the API."""

from __future__ import annotations

from typing import Any

from pytest_aiohttp import AiohttpClient

from api.app import create_app
from streams.settings import Settings
from tests.integration.api_keys import bearer
from tests.integration.cli.support import cli


async def test_a_created_key_works_on_the_api_until_it_is_revoked(
    aiohttp_client: AiohttpClient, settings: Settings
) -> None:
    api = settings.api.model_copy(update={"key_cache_s": 0.0})
    client: Any = await aiohttp_client(create_app(settings.model_copy(update={"api": api})))
    created = await cli(
        settings, "keys", "create", "--name", "orders-reader", "--scopes", "orders:read"
    )
    assert created.code == 0, created.stderr
    [printed] = created.lines
    assert printed["scopes"] == ["orders:read"]
    assert printed["key"].startswith(f"trb_{printed['id']}_")
    assert (await client.get("/v1/orders/ord-1", headers=bearer(printed["key"]))).status == 404

    listed = await cli(settings, "keys", "list")
    mine = [line for line in listed.lines if line["id"] == printed["id"]]
    assert len(mine) == 1
    assert mine[0]["revoked_at"] is None
    assert all("key" not in line and "secret_hash" not in line for line in listed.lines)

    revoked = await cli(settings, "keys", "revoke", printed["id"])
    assert revoked.code == 0
    assert revoked.lines[0]["revoked_at"] is not None
    assert (await client.get("/v1/orders/ord-1", headers=bearer(printed["key"]))).status == 401


async def test_bad_scopes_and_unknown_ids_are_usage_errors(settings: Settings) -> None:
    bad = await cli(settings, "keys", "create", "--name", "x", "--scopes", "orders:write")
    assert bad.code == 2
    assert "unknown scope(s) orders:write" in bad.stderr
    unpaired = await cli(
        settings, "keys", "create", "--name", "x", "--scopes", "operator", "--burst", "5"
    )
    assert unpaired.code == 2
    assert (await cli(settings, "keys", "revoke", "nosuchkey000")).code == 2
