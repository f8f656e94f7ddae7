"""GCRA arithmetic with a fake clock: the reference the Redis script is checked against."""

from __future__ import annotations

import pytest

from streams.settings import ApiProcessSettings, RateLimitSettings, SourceRateLimit
from streams.stores.rate_limiter import RateDecision, RateLimitedError, gcra

LIMIT = SourceRateLimit(rate_per_s=2.0, burst=3)  # one slot per 500 ms, three at once


def run(times_ms: list[float], limit: SourceRateLimit = LIMIT) -> list[RateDecision]:
    tat: float | None = None
    decisions = []
    for now_ms in times_ms:
        step = gcra(tat, now_ms, limit)
        if step.tat_ms is not None:
            tat = step.tat_ms
        decisions.append(step.decision)
    return decisions


def test_a_full_burst_is_allowed_at_once_and_the_next_request_refused() -> None:
    decisions = run([0, 0, 0, 0])
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    refused = decisions[3]
    assert refused.retry_after_ms == pytest.approx(500)
    assert refused.reset_ms == pytest.approx(1500)


def test_slots_come_back_at_the_rate() -> None:
    decisions = run([0, 0, 0, 499, 500, 500])
    assert [d.allowed for d in decisions] == [True, True, True, False, True, False]
    assert decisions[3].retry_after_ms == pytest.approx(1)
    assert decisions[5].retry_after_ms == pytest.approx(500)


def test_an_idle_source_gets_its_whole_burst_back_and_no_more() -> None:
    decisions = run([0, 0, 0, 10_000, 10_000, 10_000, 10_000])
    assert [d.allowed for d in decisions] == [True] * 6 + [False]
    assert decisions[3].remaining == 2


def test_requests_at_the_rate_are_always_allowed() -> None:
    assert all(d.allowed for d in run([n * 500.0 for n in range(20)]))


def test_a_refusal_stores_nothing() -> None:
    assert gcra(1500.0, 0.0, LIMIT).tat_ms is None


def test_headers_follow_the_ietf_draft_and_round_up_to_seconds() -> None:
    allowed, refused = run([0, 0, 0, 0])[2:]
    assert allowed.headers() == {
        "RateLimit-Limit": "3",
        "RateLimit-Remaining": "0",
        "RateLimit-Reset": "2",
    }
    assert refused.headers()["Retry-After"] == "1"
    assert RateLimitedError("orders", refused).decision is refused


def test_a_source_can_have_its_own_limit() -> None:
    settings = RateLimitSettings(sources={"orders": SourceRateLimit(rate_per_s=5, burst=1)})
    assert settings.for_source("orders").burst == 1
    assert settings.for_source("users") == SourceRateLimit(rate_per_s=100.0, burst=200)


def test_per_source_limits_are_read_from_json_in_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRIBUTARY_RATELIMIT_SOURCES", '{"auth": {"rate_per_s": 1, "burst": 2}}')
    monkeypatch.setenv("TRIBUTARY_RATELIMIT_BURST", "7")
    settings = ApiProcessSettings()
    assert settings.ratelimit.for_source("auth") == SourceRateLimit(rate_per_s=1, burst=2)
    assert settings.ratelimit.burst == 7
