"""The problem answers of the rate-limit errors."""

from __future__ import annotations

from api.problems import problem_for
from api.rate_limits import InvalidParameterError
from streams.stores.rate_limiter import RateDecision, RateLimitedError


def test_over_the_limit_is_429_with_retry_after_and_ratelimit_headers() -> None:
    decision = RateDecision(False, 10, 0, retry_after_ms=1200, reset_ms=9000)
    problem = problem_for(RateLimitedError("orders", decision), 5)
    assert problem.status == 429
    assert problem.headers == {
        "Retry-After": "2",
        "RateLimit-Limit": "10",
        "RateLimit-Remaining": "0",
        "RateLimit-Reset": "9",
    }
    assert problem.body("/x")["source"] == "orders"


def test_a_bad_parameter_is_400_naming_the_field() -> None:
    problem = problem_for(InvalidParameterError("ip", "not an address"), 5)
    assert problem.status == 400
    body = problem.body("/x")
    assert body["field"] == "ip"
    assert body["errors"] == [{"field": "ip", "message": "not an address"}]
