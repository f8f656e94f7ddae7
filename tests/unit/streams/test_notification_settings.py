"""The notifications section from the environment, as a worker process reads it."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from streams.settings import NotificationSettings, ThrottleLimit, WorkerProcessSettings


def test_defaults_throttle_every_channel_and_fall_back_to_english() -> None:
    section = WorkerProcessSettings().notifications
    assert section.fallback_locale == "en"
    assert {limit.channel for limit in section.throttles} == {"email", "sms", "push", "whatsapp"}
    assert ThrottleLimit(channel="sms", limit=5, window_s=3600) in section.throttles


def test_throttles_come_as_json_and_survive_a_round_trip(monkeypatch: pytest.MonkeyPatch) -> None:
    limits = [
        {"channel": "sms", "category": "marketing", "limit": 1, "window_s": 86400},
        {"channel": "email", "limit": 3, "window_s": 60},
    ]
    monkeypatch.setenv("TRIBUTARY_NOTIFICATIONS_THROTTLES", json.dumps(limits))
    monkeypatch.setenv("TRIBUTARY_NOTIFICATIONS_FALLBACK_LOCALE", "fr")
    monkeypatch.setenv("TRIBUTARY_NOTIFICATIONS_DEFERRAL_CHECK_INTERVAL_S", "0.5")
    section = WorkerProcessSettings().notifications
    assert section.throttles == (
        ThrottleLimit(channel="sms", category="marketing", limit=1, window_s=86400),
        ThrottleLimit(channel="email", limit=3, window_s=60),
    )
    assert (section.fallback_locale, section.deferral_check_interval_s) == ("fr", 0.5)
    # What tests/integration/worker_process.py::settings_env passes to a worker: JSON.
    assert NotificationSettings.model_validate(json.loads(json.dumps(section.model_dump()))) == (
        section
    )


def test_critical_cannot_be_throttled() -> None:
    with pytest.raises(ValidationError):
        ThrottleLimit.model_validate(
            {"channel": "sms", "category": "critical", "limit": 1, "window_s": 1}
        )
