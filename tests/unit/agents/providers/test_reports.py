"""Which breakers a worker reports at each tick, what a report says, and commands applied."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from agents.providers.reports import BreakerReporter, apply_commands, report_record
from schemas.providers import BreakerReport, ProviderCommand
from streams.providers.circuit_breaker import BreakerPolicy, CircuitBreaker
from tests.unit.fakes import FakeClock

EPOCH = datetime(2026, 12, 5, tzinfo=UTC)
POLICY = BreakerPolicy(failure_threshold=2, min_requests=2, open_s=60.0, half_open_successes=2)
WORKER = "http://worker-1:6066"


def wall(clock: FakeClock) -> datetime:
    return EPOCH + timedelta(seconds=clock())


def setup(
    heartbeat_s: float = 15.0,
) -> tuple[FakeClock, dict[str, CircuitBreaker], BreakerReporter]:
    clock = FakeClock(100.0)
    breakers = {
        name: CircuitBreaker(POLICY, clock, lambda: wall(clock)) for name in ("sendgrid", "smtp")
    }
    reporter = BreakerReporter(
        WORKER, heartbeat_s=heartbeat_s, clock=clock, wall_clock=lambda: wall(clock)
    )
    return clock, breakers, reporter


def test_every_breaker_is_reported_first_then_only_those_that_changed() -> None:
    clock, breakers, reporter = setup()
    first = reporter.due(breakers)
    assert [report.provider for _, report in first] == ["sendgrid", "smtp"]
    reporter.published(first)
    assert reporter.due(breakers) == []

    breakers["sendgrid"].record_failure("HTTP 503: down")
    breakers["sendgrid"].record_failure("HTTP 503: down")
    [(_, report)] = reporter.due(breakers)
    assert report == BreakerReport(
        provider="sendgrid",
        worker=WORKER,
        state="open",
        consecutive_failures=2,
        requests_in_window=2,
        last_error="HTTP 503: down",
        last_error_at=wall(clock),
        opened_at=wall(clock),
        times_opened=1,
        reported_at=wall(clock),
        expires_at=wall(clock) + timedelta(seconds=45.0),
    )


def test_the_half_open_state_reached_by_time_alone_is_reported() -> None:
    clock, breakers, reporter = setup(heartbeat_s=1000.0)
    breakers["smtp"].record_failure("421")
    breakers["smtp"].record_failure("421")
    reporter.published(reporter.due(breakers))
    clock.now_s += 10.0
    assert reporter.due(breakers) == []
    clock.now_s += 50.0
    [(_, report)] = reporter.due(breakers)
    assert (report.provider, report.state) == ("smtp", "half-open")


def test_an_unpublished_report_is_due_again_and_a_quiet_breaker_is_repeated_each_heartbeat() -> (
    None
):
    clock, breakers, reporter = setup()
    assert len(reporter.due(breakers)) == 2  # not marked published (Kafka refused, say)
    due = reporter.due(breakers)
    assert len(due) == 2
    reporter.published(due)
    clock.now_s += 14.9
    assert reporter.due(breakers) == []
    clock.now_s += 0.1
    assert len(reporter.due(breakers)) == 2


def test_a_report_is_keyed_by_provider_and_worker_and_reads_back() -> None:
    _, breakers, reporter = setup()
    [(_, report), _] = reporter.due(breakers)
    record = report_record(report)
    assert record.key == f"sendgrid/{WORKER}".encode()
    assert record.value is not None
    assert BreakerReport.model_validate_json(record.value) == report


def command(provider: str) -> ProviderCommand:
    return ProviderCommand(
        command_id=uuid.uuid4(), command="reset", provider=provider, requested_at=EPOCH
    )


def test_commands_reset_the_named_breakers_and_unreadable_ones_are_skipped() -> None:
    reset: list[str] = []

    def reset_one(provider: str) -> bool:
        reset.append(provider)
        return provider == "sendgrid"

    values = [
        command("sendgrid").model_dump_json().encode(),
        b"not json",
        None,
        command("meta").model_dump_json().encode(),
    ]
    applied = apply_commands(values, reset_one, WORKER)
    assert [c.provider for c in applied] == ["sendgrid", "meta"]
    assert reset == ["sendgrid", "meta"]
