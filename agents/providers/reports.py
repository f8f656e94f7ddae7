"""What a worker tells the others of its breakers, and how it applies an operator's command.

The breakers live in each worker process (`streams.providers.channels`), on the send path, where
nothing may wait on I/O. So a timer (`breaker_report_s`) takes their snapshots and publishes those
that changed since the last published report, and every one at least each `breaker_heartbeat_s`
(a report expires after three heartbeats: the worker is then gone, its breakers no longer count).
Reports are marked published only once Kafka acknowledged them, so a failed publish is tried
again at the next tick.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

from pydantic import ValidationError

from schemas.providers import MAX_ERROR_CHARS, BreakerReport, ProviderCommand
from streams.providers.circuit_breaker import BreakerSnapshot, CircuitBreaker
from streams.runtime import OutgoingRecord

log = logging.getLogger(__name__)

# A report older than this many heartbeats is from a worker that stopped reporting.
HEARTBEATS_TO_EXPIRE = 3


def report_of(
    provider: str, worker: str, snapshot: BreakerSnapshot, now: datetime, heartbeat_s: float
) -> BreakerReport:
    last_error = snapshot.last_error
    return BreakerReport(
        provider=provider,
        worker=worker,
        state=snapshot.state.value,
        consecutive_failures=snapshot.consecutive_failures,
        requests_in_window=snapshot.requests_in_window,
        last_error=last_error[:MAX_ERROR_CHARS] if last_error else None,
        last_error_at=snapshot.last_error_at,
        opened_at=snapshot.opened_at,
        times_opened=snapshot.times_opened,
        reported_at=now,
        expires_at=now + timedelta(seconds=HEARTBEATS_TO_EXPIRE * heartbeat_s),
    )


def report_record(report: BreakerReport) -> OutgoingRecord:
    return OutgoingRecord(report.key, report.model_dump_json().encode())


class BreakerReporter:
    """Decides which breakers to report at each tick (see the module doc)."""

    def __init__(
        self,
        worker: str,
        heartbeat_s: float,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._worker = worker
        self._heartbeat_s = heartbeat_s
        self._clock = clock
        self._wall_clock = wall_clock
        # provider -> (the snapshot last published, when)
        self._published: dict[str, tuple[BreakerSnapshot, float]] = {}

    def due(
        self, breakers: Mapping[str, CircuitBreaker]
    ) -> list[tuple[BreakerSnapshot, BreakerReport]]:
        now_s, now = self._clock(), self._wall_clock()
        due = []
        for provider, breaker in sorted(breakers.items()):
            snapshot = breaker.snapshot()
            last = self._published.get(provider)
            if last is not None and last[0] == snapshot and now_s - last[1] < self._heartbeat_s:
                continue
            report = report_of(provider, self._worker, snapshot, now, self._heartbeat_s)
            due.append((snapshot, report))
        return due

    def published(self, reported: Sequence[tuple[BreakerSnapshot, BreakerReport]]) -> None:
        now_s = self._clock()
        for snapshot, report in reported:
            self._published[report.provider] = (snapshot, now_s)


def apply_commands(
    values: Sequence[bytes | None], reset: Callable[[str], bool], worker: str
) -> list[ProviderCommand]:
    """Apply each command (a reset closes the provider's breaker here, if this worker has it);
    returns the commands applied. An unreadable value is logged and skipped: the topic is
    written by our own API, so one is a bug to see, not a reason to stop the worker."""
    applied = []
    for value in values:
        try:
            command = ProviderCommand.model_validate_json(value or b"")
        except ValidationError as exc:
            log.error("unreadable provider command skipped: %s", exc.errors()[:1])
            continue
        had_it = reset(command.provider)
        log.info(
            "provider command %s %s: %s",
            command.command,
            command.provider,
            "applied" if had_it else "no breaker for it on this worker",
            extra={"command_id": str(command.command_id), "worker": worker},
        )
        applied.append(command)
    return applied
