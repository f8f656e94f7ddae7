from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from agents.retry import Backoff, retry_retriable
from streams.errors import RetriableError, ServiceUnavailableError

T = TypeVar("T")


def test_delays_grow_by_the_factor_and_stop_at_the_cap() -> None:
    delays = Backoff(initial_s=0.1, max_s=0.5, factor=2).delays_s()
    assert list(itertools.islice(delays, 6)) == [0.1, 0.2, 0.4, 0.5, 0.5, 0.5]


@pytest.mark.parametrize(("initial_s", "max_s", "factor"), [(0, 1, 2), (2, 1, 2), (0.1, 1, 0.5)])
def test_a_backoff_that_would_not_back_off_is_refused(
    initial_s: float, max_s: float, factor: float
) -> None:
    with pytest.raises(ValueError, match="initial_s"):
        Backoff(initial_s=initial_s, max_s=max_s, factor=factor)


async def test_a_retry_after_hint_lengthens_the_wait_within_the_cap() -> None:
    sleeps: list[float] = []
    attempts = 0

    async def sleep(delay_s: float) -> None:
        sleeps.append(delay_s)

    async def flaky() -> str:
        nonlocal attempts
        attempts += 1
        if attempts <= 2:
            error = RetriableError("busy")
            error.retry_after_s = 3.0 if attempts == 1 else 60.0
            raise error
        return "done"

    heard: list[tuple[str, float]] = []
    result = await retry_retriable(
        flaky,
        backoff=Backoff(0.1, 5.0),
        what="flaky",
        sleep=sleep,
        on_retry=lambda error, delay_s: heard.append((str(error), delay_s)),
    )
    assert result == "done"
    assert sleeps == [3.0, 5.0]
    assert heard == [("busy", 3.0), ("busy", 5.0)]


async def test_success_on_the_first_attempt_does_not_sleep() -> None:
    sleeps: list[float] = []

    async def sleep(delay_s: float) -> None:
        sleeps.append(delay_s)

    async def works() -> int:
        return 7

    assert await retry_retriable(works, backoff=Backoff(), what="x", sleep=sleep) == 7
    assert sleeps == []


async def test_each_retry_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    failures = iter([ServiceUnavailableError("postgresql", "down")])

    async def sleep(delay_s: float) -> None:
        return None

    async def once_down() -> None:
        for error in failures:
            raise error

    await retry_retriable(once_down, backoff=Backoff(), what="writing views", sleep=sleep)
    assert "writing views failed (postgresql unavailable: down); retry 1" in caplog.text


class _Clock:
    """Time that passes only when the retry sleeps."""

    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s

    async def sleep(self, delay_s: float) -> None:
        self.now_s += delay_s

    async def retry_for_10_s(self, operation: Callable[[], Awaitable[T]]) -> T:
        """`operation` retried for up to 10 s of this clock, waiting 1, 2, then 4 s."""
        return await retry_retriable(
            operation,
            backoff=Backoff(initial_s=1.0, max_s=4.0),
            what="starting",
            sleep=self.sleep,
            give_up_after_s=10.0,
            clock=self,
        )


async def test_a_bounded_retry_gives_up_with_the_error_once_its_time_is_up() -> None:
    clock = _Clock()
    attempts = 0

    async def down() -> None:
        nonlocal attempts
        attempts += 1
        raise ServiceUnavailableError("kafka", f"refused {attempts}")

    with pytest.raises(ServiceUnavailableError, match="refused 4"):
        await clock.retry_for_10_s(down)
    # Waits 1, 2 and 4 s; the next 4 s would end past the 10 s: the fourth failure is raised.
    assert (attempts, clock.now_s) == (4, 7.0)


async def test_a_bounded_retry_returns_what_succeeds_within_its_time() -> None:
    clock = _Clock()
    failures = iter([ServiceUnavailableError("kafka", "restarting")] * 3)

    async def back_soon() -> str:
        for error in failures:
            raise error
        return "started"

    result = await clock.retry_for_10_s(back_soon)
    assert (result, clock.now_s) == ("started", 7.0)
