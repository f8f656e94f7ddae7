"""Declared access per route, and the verifier's cache of keys (fake store, fake clock)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from api.access import AccessError, KeyVerifier, declared_access, required_scope
from api.app import create_app
from streams.api_keys import ApiKey, hash_secret, new_key, parse_key, parse_scopes
from streams.settings import Settings
from tests.unit.fakes import FakeClock

# Every route of the app that is not open, and what it needs. A route added to the app under
# /v1 without a declaration needs `operator` and fails here until it is listed.
EXPECTED = {
    ("GET", "/v1/orders/{id}"): "orders:read",
    ("GET", "/v1/orders"): "orders:read",
    ("GET", "/v1/orders/{id}/history"): "orders:read",
    ("GET", "/v1/stats/orders"): "stats:read",
    ("GET", "/v1/users/{id}/sessions"): "users:read",
    ("POST", "/v1/users/{id}/sessions/revoke"): "users:write",
    ("GET", "/v1/users/{id}/preferences"): "users:read",
    ("PATCH", "/v1/users/{id}/preferences"): "users:write",
    ("POST", "/v1/users/{id}/preferences/reset"): "users:write",
    ("GET", "/v1/templates"): "operator",
    ("GET", "/v1/templates/{name}"): "operator",
    ("POST", "/v1/templates/{name}/versions"): "operator",
    ("POST", "/v1/templates/{name}/preview"): "operator",
    ("POST", "/v1/templates/{name}/versions/{version}/activate"): "operator",
    ("POST", "/v1/templates/{name}/versions/{version}/deactivate"): "operator",
    ("GET", "/v1/notifications/{id}"): "notifications:read",
    ("GET", "/v1/users/{id}/notifications"): "notifications:read",
    ("GET", "/v1/stats/delivery"): "stats:read",
    ("GET", "/v1/rate-limits/check"): "ratelimits:check",
    ("DELETE", "/v1/rate-limits/blocks/{kind}/{id}"): "operator",
    ("GET", "/v1/providers"): "operator",
    ("POST", "/v1/providers/{name}/reset"): "operator",
    ("GET", "/v1/suppressions"): "operator",
    ("DELETE", "/v1/suppressions/{channel}/{address}"): "operator",
    ("GET", "/metrics"): "operator",
    ("POST", "/v1/webhooks/orders"): "signed-webhook",
    ("POST", "/v1/webhooks/users"): "signed-webhook",
    ("POST", "/v1/webhooks/auth"): "signed-webhook",
    ("POST", "/v1/webhooks/providers/{provider}"): "signed-webhook",
}


def test_every_v1_route_and_metrics_declare_their_access() -> None:
    app = create_app(Settings())
    declared = {}
    for route in app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if route.method == "HEAD" or not (path.startswith("/v1/") or path == "/metrics"):
            continue
        declared[(route.method, path)] = declared_access(route.handler)
    assert declared == EXPECTED


def test_open_routes_and_undeclared_v1_routes() -> None:
    def undeclared() -> None: ...

    assert required_scope("/health/live", undeclared) is None
    assert required_scope("/schema-registry/subjects", undeclared) is None
    assert required_scope("/v1/new-thing", undeclared) == "operator"


def test_keys_parse_and_scopes_are_checked() -> None:
    presented, text = new_key()
    assert text.startswith(f"trb_{presented.id}_")
    assert parse_key(text) == presented
    for bad in ("", "trb_", f"{text}x", text.replace("trb_", "trx_"), f"trb_{presented.id}"):
        assert parse_key(bad) is None
    assert parse_scopes("orders:read, operator") == {"orders:read", "operator"}
    with pytest.raises(ValueError, match="unknown scope"):
        parse_scopes("orders:write")


class FakeRows:
    def __init__(self) -> None:
        self.rows: dict[str, ApiKey] = {}
        self.reads = 0

    async def get(self, key_id: str) -> ApiKey | None:
        self.reads += 1
        return self.rows.get(key_id)

    async def close(self) -> None:
        return None


def stored(rows: FakeRows, revoked: bool = False) -> str:
    presented, text = new_key()
    rows.rows[presented.id] = ApiKey(
        presented.id,
        "t",
        frozenset({"orders:read"}),
        hash_secret(presented.secret),
        datetime.now(UTC),
        datetime.now(UTC) if revoked else None,
    )
    return text


async def test_a_verified_key_is_cached_and_a_revoked_one_refused_once_the_cache_expires() -> None:
    rows, clock = FakeRows(), FakeClock()
    verifier = KeyVerifier(rows, ttl_s=5.0, max_entries=100, clock=clock)
    text = stored(rows)
    assert (await verifier.verify(text)).scopes == {"orders:read"}
    await verifier.verify(text)
    assert rows.reads == 1, "the second request costs no round trip"
    presented = parse_key(text)
    assert presented is not None
    rows.rows[presented.id] = replace(rows.rows[presented.id], revoked_at=datetime.now(UTC))
    clock.now_s += 4.9
    await verifier.verify(text)  # still trusted for the cache time
    clock.now_s += 0.1
    with pytest.raises(AccessError) as refused:
        await verifier.verify(text)
    assert refused.value.status == 401


async def test_unknown_wrong_secret_and_revoked_keys_get_the_same_401() -> None:
    rows = FakeRows()
    verifier = KeyVerifier(rows, ttl_s=0, max_entries=100)
    good = stored(rows)
    revoked = stored(rows, revoked=True)
    wrong_secret = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    _, unknown = new_key()
    details = set()
    for text in (revoked, wrong_secret, unknown, "not-a-key"):
        with pytest.raises(AccessError) as refused:
            await verifier.verify(text)
        assert refused.value.status == 401
        details.add(refused.value.detail)
    assert len(details) == 1
