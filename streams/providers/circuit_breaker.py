"""A circuit breaker per provider: stop calling a provider that keeps failing, probe it later.

Hand-written (about 60 lines) rather than taken from `purgatory` or `aiobreaker`:
- both read the wall clock themselves (`time.time()`, `datetime.now()`), so the state machine
  could only be tested by sleeping; here the clock is injected;
- purgatory sends every call through a message bus and a unit of work, which costs more than
  the decision itself on a path that makes a thousand calls a second, and aiobreaker has not
  been released since 2021;
- both count exceptions of a call they wrap, whereas a send's outcome decides here: a permanent
  rejection (an invalid recipient) proves the provider up, only retriable failures count.

States: closed (calls pass; `failure_threshold` consecutive failures open it), open (calls are
refused for `open_s`), half-open (one probe call passes; its success closes the circuit, its
failure opens it for another `open_s`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import Enum

Clock = Callable[[], float]


class BreakerState(Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


class CircuitBreaker:
    def __init__(
        self, failure_threshold: int, open_s: float, clock: Clock = time.monotonic
    ) -> None:
        if failure_threshold < 1 or open_s <= 0:
            raise ValueError("need failure_threshold >= 1 and open_s > 0")
        self._threshold = failure_threshold
        self._open_s = open_s
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False
        self.times_opened = 0

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._clock() - self._opened_at < self._open_s:
            return BreakerState.OPEN
        return BreakerState.HALF_OPEN

    def open_for_s(self) -> float:
        """How long calls stay refused (0 unless open)."""
        if self._opened_at is None:
            return 0.0
        return max(0.0, self._open_s - (self._clock() - self._opened_at))

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
        state = self.state
        if state is BreakerState.CLOSED:
            self._failures = 0
        elif state is BreakerState.HALF_OPEN and self._probing:
            self._close()
        # Open: a call that started before the circuit opened proves little; the probe decides.

    def record_failure(self) -> None:
        state = self.state
        if state is BreakerState.CLOSED:
            self._failures += 1
            if self._failures >= self._threshold:
                self._open()
        elif state is BreakerState.HALF_OPEN and self._probing:
            self._open()

    def release(self) -> None:
        """An allowed call ended without a verdict (cancelled): let another probe through."""
        self._probing = False

    def _open(self) -> None:
        self._opened_at = self._clock()
        self._probing = False
        self.times_opened += 1

    def _close(self) -> None:
        self._opened_at = None
        self._probing = False
        self._failures = 0
