"""`/v1/providers`' view: the workers' reports merged per provider, expired ones left out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from api.errors import NotFoundError
from api.problems import problem_for
from api.providers import PROVIDERS, providers_body
from schemas.providers import BreakerReport

NOW = datetime(2026, 12, 5, 12, tzinfo=UTC)


def report(provider: str, worker: str, state: str, **more: Any) -> BreakerReport:
    fields: dict[str, Any] = {
        "provider": provider,
        "worker": worker,
        "state": state,
        "consecutive_failures": 0,
        "requests_in_window": 0,
        "times_opened": 0,
        "reported_at": NOW - timedelta(seconds=1),
        "expires_at": NOW + timedelta(seconds=44),
    }
    return BreakerReport.model_validate(fields | more)


def by_name(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {view["name"]: view for view in body["providers"]}


def test_without_reports_every_provider_is_closed_and_the_status_ok() -> None:
    body = providers_body([], NOW)
    assert body["status"] == "ok"
    assert body["degraded"] == []
    assert [view["name"] for view in body["providers"]] == list(PROVIDERS)
    assert {view["state"] for view in body["providers"]} == {"closed"}


def test_the_worst_worker_decides_and_counts_merge() -> None:
    opened_at = NOW - timedelta(seconds=20)
    reports = [
        report(
            "sendgrid",
            "w1",
            "open",
            consecutive_failures=5,
            requests_in_window=12,
            last_error="HTTP 503: down",
            last_error_at=NOW - timedelta(seconds=20),
            opened_at=opened_at,
            times_opened=1,
        ),
        report(
            "sendgrid",
            "w2",
            "half-open",
            consecutive_failures=6,
            requests_in_window=3,
            last_error="timed out",
            last_error_at=NOW - timedelta(seconds=2),
            opened_at=NOW - timedelta(seconds=70),
            times_opened=2,
        ),
        report("twilio", "w1", "closed", requests_in_window=7),
    ]
    body = providers_body(reports, NOW)
    assert (body["status"], body["degraded"]) == ("degraded", ["sendgrid"])
    sendgrid = by_name(body)["sendgrid"]
    assert sendgrid["state"] == "open"
    assert sendgrid["consecutive_failures"] == 6
    assert sendgrid["requests_in_window"] == 15
    assert sendgrid["last_error"] == "timed out"
    assert sendgrid["opened_at"] == (NOW - timedelta(seconds=70)).isoformat()
    assert sendgrid["times_opened"] == 3
    assert [w["worker"] for w in sendgrid["workers"]] == ["w1", "w2"]
    assert by_name(body)["twilio"]["state"] == "closed"


def test_an_expired_report_is_listed_but_counts_for_nothing() -> None:
    gone = report("fcm", "w9", "open", expires_at=NOW - timedelta(seconds=1), times_opened=1)
    body = providers_body([gone], NOW)
    fcm = by_name(body)["fcm"]
    assert body["status"] == "ok"
    assert fcm["state"] == "closed"
    assert fcm["times_opened"] == 0
    assert fcm["workers"][0]["current"] is False


def test_an_unknown_provider_is_a_404_naming_the_path_parameter() -> None:
    problem = problem_for(NotFoundError("provider 'pigeon'", field="name"), 5)
    assert problem.status == 404
    assert problem.extensions == {"field": "name"}
    assert "pigeon" in problem.detail
