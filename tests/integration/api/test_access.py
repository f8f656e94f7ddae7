"""Every read needs a key with its scope: 401 without a valid one, 403 with the wrong scope, in
both cases before anything is looked up; keys from the real PostgreSQL, revocation honoured."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from pydantic import SecretStr
from pytest_aiohttp import AiohttpClient

from api.app import create_app
from streams.settings import OperatorSettings, Settings
from streams.stores.api_key_store import ApiKeyStore
from tests.integration.api_keys import bearer, create_key

READS = {
    "/v1/orders/ord-1": "orders:read",
    "/v1/notifications/n-1": "notifications:read",
    "/v1/users/u-1/notifications": "notifications:read",
    "/v1/stats/delivery": "stats:read",
    "/v1/rate-limits/check?user_id=u-1": "ratelimits:check",
    "/metrics": "operator",
}
OPERATOR_TOKEN = "access-test-operator-token"


@pytest.fixture
async def client(aiohttp_client: AiohttpClient, settings: Settings) -> Any:
    """No default key: each request says who it is."""
    operator = OperatorSettings(token=SecretStr(OPERATOR_TOKEN))
    return await aiohttp_client(create_app(settings.model_copy(update={"operator": operator})))


async def _problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status == status, await response.text()
    assert response.content_type == "application/problem+json"
    body: dict[str, Any] = await response.json()
    return body


@pytest.mark.parametrize("path", READS)
async def test_reads_without_a_valid_key_are_401(client: Any, path: str) -> None:
    unknown = "trb_000000000000_" + "A" * 43
    for headers in ({}, bearer("nonsense"), bearer(unknown), {"Authorization": "Basic eDp5"}):
        response = await client.get(path, headers=headers)
        body = await _problem(response, 401)
        assert body["type"] == "urn:tributary:problem:unauthorized"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("path", READS)
async def test_reads_with_a_key_lacking_the_scope_are_403_and_tell_nothing_more(
    client: Any, settings: Settings, path: str
) -> None:
    scopes = {"orders:read", "notifications:read", "stats:read", "ratelimits:check", "operator"}
    others = sorted(scopes - {READS[path]})
    key = await create_key(settings.database, others)  # type: ignore[arg-type]
    response = await client.get(path, headers=bearer(key))
    body = await _problem(response, 403)
    assert READS[path] in body["detail"]
    granted = await create_key(settings.database, [READS[path]])  # type: ignore[list-item]
    assert (await client.get(path, headers=bearer(granted))).status in (200, 404)


async def test_a_forbidden_answer_is_the_same_whether_the_resource_exists_or_not(
    client: Any, settings: Settings
) -> None:
    key = await create_key(settings.database, ["stats:read"])
    missing = await client.get("/v1/orders/ord-does-not-exist", headers=bearer(key))
    other = await client.get(f"/v1/orders/ord-{uuid.uuid4().hex}", headers=bearer(key))
    first, second = await _problem(missing, 403), await _problem(other, 403)
    assert first["detail"] == second["detail"]


async def test_the_operator_token_opens_operator_endpoints_only(client: Any) -> None:
    operator = bearer(OPERATOR_TOKEN)
    assert (await client.get("/metrics", headers=operator)).status == 200
    lifted = await client.delete("/v1/rate-limits/blocks/ip/192.0.2.9", headers=operator)
    assert lifted.status == 404
    await _problem(await client.get("/v1/orders/ord-1", headers=operator), 403)


async def test_health_and_webhooks_need_no_key(client: Any) -> None:
    assert (await client.get("/health/live")).status == 200
    # A webhook is authenticated by its signature: unsigned, it is refused as such.
    unsigned = await client.post("/v1/webhooks/orders", data=b"{}")
    body = await _problem(unsigned, 401)
    assert body["type"] == "urn:tributary:problem:invalid-signature"


async def test_a_revoked_key_is_refused_once_its_cache_time_is_over(
    aiohttp_client: AiohttpClient, settings: Settings
) -> None:
    """With the cache off (0 s) that is the next request; the cache itself is unit-tested."""
    api = settings.api.model_copy(update={"key_cache_s": 0.0})
    client = await aiohttp_client(create_app(settings.model_copy(update={"api": api})))
    store = ApiKeyStore.from_settings(settings.database)
    try:
        key, text = await store.create("to-revoke", ["orders:read"])
        assert (await client.get("/v1/orders/ord-x", headers=bearer(text))).status == 404
        await store.revoke(key.id)
        await _problem(await client.get("/v1/orders/ord-x", headers=bearer(text)), 401)
    finally:
        await store.close()
