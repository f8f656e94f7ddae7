"""A circuit breaker per provider: stop calling a provider that keeps failing, probe it later.

Hand-written (about 150 lines) rather than taken from `purgatory` or `aiobreaker`:
- both read the wall clock themselves (`time.time()`, `datetime.now()`), so the state machine
  could only be tested by sleeping; here the clocks are injected;
- purgatory sends every call through a message bus and a unit of work, which costs more than
  the decision itself on a path that makes a thousand calls a second, and aiobreaker has not
  been released since 2021;
- both count exceptions of a call they wrap, whereas a send's outcome decides here: a permanent
  rejection (an invalid recipient) proves the provider up, only retriable failures count.

States, as the NestJS service's breaker had them (`BreakerPolicy`, all settings):
- closed: calls pass. It opens after `failure_threshold` consecutive failures, once at least
  `min_requests` calls ended in the last `window_s` (a provider that is barely used does not
  trip on a few failures);
- open: calls are refused for `open_s`, then it is half-open;
- half-open: one probe call at a time passes; `half_open_successes` successful probes in a row
  close it, one failed probe opens it for another `open_s`.

`reset` closes it at once (an operator's command). `snapshot` is what the operator views, the
readiness probe and the metrics read.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum

from streams.settings import DispatchSettings

Clock = Callable[[], float]
WallClock = Callable[[], datetime]
# The window's resolution: requests are counted in this many buckets of `window_s / BUCKETS`.
BUCKETS = 10


class BreakerState(Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    failure_threshold: int = 5
    min_requests: int = 10
    open_s: float = 60.0
    half_open_successes: int = 2
    window_s: float = 60.0

    def __post_init__(self) -> None:
        if self.failure_threshold < 1 or self.min_requests < 1 or self.half_open_successes < 1:
            raise ValueError("need failure_threshold, min_requests, half_open_successes >= 1")
        if self.open_s <= 0 or self.window_s <= 0:
            raise ValueError("need open_s > 0 and window_s > 0")

    @classmethod
    def of(cls, dispatch: DispatchSettings) -> BreakerPolicy:
        return cls(
            failure_threshold=dispatch.breaker_failure_threshold,
            min_requests=dispatch.breaker_min_requests,
            open_s=dispatch.breaker_open_s,
            half_open_successes=dispatch.breaker_half_open_successes,
            window_s=dispatch.breaker_window_s,
        )


@dataclass(frozen=True, slots=True)
class BreakerSnapshot:
    state: BreakerState
    consecutive_failures: int
    requests_in_window: int
    # The last failure's reason, already without recipients (the caller redacts it).
    last_error: str | None
    last_error_at: datetime | None
    opened_at: datetime | None
    times_opened: int


class RollingCount:
    """Events in the last `window_s` (to a bucket's width), in constant memory."""

    def __init__(self, window_s: float, buckets: int = BUCKETS) -> None:
        self._width_s = window_s / buckets
        self._buckets = buckets
        self._counts: deque[list[int]] = deque()  # [bucket index, events]
        self._total = 0

    def add(self, now_s: float) -> None:
        index = self._expire(now_s)
        if self._counts and self._counts[-1][0] == index:
            self._counts[-1][1] += 1
        else:
            self._counts.append([index, 1])
        self._total += 1

    def total(self, now_s: float) -> int:
        self._expire(now_s)
        return self._total

    def _expire(self, now_s: float) -> int:
        index = int(now_s // self._width_s)
        while self._counts and self._counts[0][0] <= index - self._buckets:
            self._total -= self._counts.popleft()[1]
        return index


class CircuitBreaker:
    def __init__(
        self,
        policy: BreakerPolicy,
        clock: Clock = time.monotonic,
        wall_clock: WallClock = lambda: datetime.now(UTC),
    ) -> None:
        self.policy = policy
        self._clock = clock
        self._wall_clock = wall_clock
        self._requests = RollingCount(policy.window_s)
        self._failures = 0
        self._opened_at: float | None = None
        self._opened_wall: datetime | None = None
        self._probing = False
        self._probe_successes = 0
        self._last_error: str | None = None
        self._last_error_at: datetime | None = None
        self.times_opened = 0

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._clock() - self._opened_at < self.policy.open_s:
            return BreakerState.OPEN
        return BreakerState.HALF_OPEN

    def open_for_s(self) -> float:
        """How long calls stay refused (0 unless open)."""
        if self._opened_at is None:
            return 0.0
        return max(0.0, self.policy.open_s - (self._clock() - self._opened_at))

    def allow(self) -> bool:
        """Whether a call may go through now; in half-open, only one (the probe) at a time."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.OPEN or self._probing:
            return False
        self._probing = True
        return True

    def record_success(self) -> None:
        self._requests.add(self._clock())
        state = self.state
        if state is BreakerState.CLOSED:
            self._failures = 0
        elif state is BreakerState.HALF_OPEN and self._probing:
            self._probing = False
            self._probe_successes += 1
            if self._probe_successes >= self.policy.half_open_successes:
                self._close()
        # Open: a call that started before the circuit opened proves little; the probes decide.

    def record_failure(self, reason: str | None = None) -> None:
        """`reason` must not name the recipient: it is shown to operators as the last error."""
        self._requests.add(self._clock())
        self._last_error = reason
        self._last_error_at = self._wall_clock()
        state = self.state
        if state is BreakerState.CLOSED:
            self._failures += 1
            if self._failures >= self.policy.failure_threshold and (
                self._requests.total(self._clock()) >= self.policy.min_requests
            ):
                self._open()
        elif state is BreakerState.HALF_OPEN and self._probing:
            self._open()

    def release(self) -> None:
        """An allowed call ended without a verdict (cancelled): let another probe through."""
        self._probing = False

    def reset(self) -> None:
        """Close it now, whatever its state (an operator knows the provider is back)."""
        self._close()

    def snapshot(self) -> BreakerSnapshot:
        return BreakerSnapshot(
            state=self.state,
            consecutive_failures=self._failures,
            requests_in_window=self._requests.total(self._clock()),
            last_error=self._last_error,
            last_error_at=self._last_error_at,
            opened_at=self._opened_wall,
            times_opened=self.times_opened,
        )

    def _open(self) -> None:
        self._opened_at = self._clock()
        self._opened_wall = self._wall_clock()
        self._probing = False
        self._probe_successes = 0
        self.times_opened += 1

    def _close(self) -> None:
        self._opened_at = None
        self._opened_wall = None
        self._probing = False
        self._probe_successes = 0
        self._failures = 0
