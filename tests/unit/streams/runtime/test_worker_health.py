"""When a worker is ready, and the reasons it gives when it is not."""

from __future__ import annotations

from dataclasses import replace

import faust

from streams.runtime.worker_health import Readiness, WorkerFacts, readiness

TIMEOUT_S = 30.0
WORKING = WorkerFacts(
    crashed=False,
    assigned_once=True,
    rebalancing=False,
    recovering_tables=False,
    stalled_s=None,
)


def test_an_assigned_recovered_unstalled_worker_is_ready() -> None:
    found = readiness(WORKING, TIMEOUT_S)

    assert found.ready
    assert found.checks == {"assigned": "ok", "tables": "ok", "stall": "ok", "providers": "ok"}
    assert found.status == "ready"
    assert found.reasons == []


def test_a_worker_that_never_had_its_partitions_is_not_ready_for_either_reason() -> None:
    found = readiness(replace(WORKING, assigned_once=False), TIMEOUT_S)

    assert not found.ready
    assert found.reasons == [
        "assigned: no partitions assigned yet",
        "tables: not recovered yet",
    ]


def test_a_rebalance_and_a_table_recovery_each_say_so() -> None:
    found = readiness(replace(WORKING, rebalancing=True, recovering_tables=True), TIMEOUT_S)

    assert found.checks["assigned"] == "a rebalance is under way"
    assert found.checks["tables"] == "recovering from their changelogs"


def test_a_stall_makes_it_unready_only_once_it_lasts_the_watchdogs_timeout() -> None:
    short = readiness(replace(WORKING, stalled_s=TIMEOUT_S - 1), TIMEOUT_S)
    long = readiness(replace(WORKING, stalled_s=TIMEOUT_S + 4), TIMEOUT_S)

    assert short.ready
    assert not long.ready
    assert long.reasons == ["stall: records waiting, commits unmoved for 34 s"]


def test_without_a_watchdog_a_stall_is_never_reported() -> None:
    assert readiness(replace(WORKING, stalled_s=1000.0), 0).ready


def test_a_crashed_app_is_not_ready() -> None:
    found = readiness(replace(WORKING, crashed=True), TIMEOUT_S)
    assert found == Readiness(
        {"assigned": "the app crashed", "tables": "ok", "stall": "ok", "providers": "ok"}
    )


def test_a_faust_app_that_never_started_reads_as_not_yet_assigned() -> None:
    app = faust.App("unit", broker="kafka://127.0.0.1:1", store="memory://", autodiscover=False)

    facts = WorkerFacts.of(app, stalled_s=None)

    assert facts == replace(WORKING, assigned_once=False)
    assert readiness(facts, TIMEOUT_S).reasons == [
        "assigned: no partitions assigned yet",
        "tables: not recovered yet",
    ]


def test_an_open_breaker_degrades_a_ready_worker_without_making_it_unready() -> None:
    facts = replace(WORKING, open_breakers={"twilio": "half-open", "sendgrid": "open"})
    found = readiness(facts, TIMEOUT_S)

    assert found.ready
    assert found.degraded
    assert found.status == "degraded"
    assert found.checks["providers"] == (
        "circuit breaker not closed: sendgrid open, twilio half-open"
    )


def test_an_unready_worker_with_an_open_breaker_is_not_ready_and_names_both() -> None:
    facts = replace(WORKING, rebalancing=True, open_breakers={"fcm": "open"})
    found = readiness(facts, TIMEOUT_S)

    assert found.status == "not-ready"
    assert found.reasons == [
        "assigned: a rebalance is under way",
        "providers: circuit breaker not closed: fcm open",
    ]
