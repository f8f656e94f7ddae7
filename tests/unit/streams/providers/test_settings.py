"""The `dispatch` and `providers` sections, as the worker reads them from the environment."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from streams.settings import WorkerProcessSettings


def test_defaults_point_at_the_local_sandbox_with_email_failing_over_to_smtp() -> None:
    settings = WorkerProcessSettings()
    assert settings.dispatch.retry_delays_s == (1.0, 5.0, 30.0)
    assert settings.providers.sendgrid_base_url == "http://127.0.0.1:8090"
    assert (settings.providers.smtp_host, settings.providers.smtp_port) == ("127.0.0.1", 2525)
    assert (settings.providers.email_primary, settings.providers.email_secondary) == (
        "sendgrid",
        "smtp",
    )


def test_the_environment_sets_delays_as_json_and_unsets_a_secondary_with_an_empty_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRIBUTARY_DISPATCH_RETRY_DELAYS_S", "[0.2, 0.5]")
    monkeypatch.setenv("TRIBUTARY_DISPATCH_BREAKER_OPEN_S", "3")
    monkeypatch.setenv("TRIBUTARY_PROVIDERS_EMAIL_SECONDARY", "")
    monkeypatch.setenv("TRIBUTARY_PROVIDERS_SENDGRID_API_KEY", "real-key")
    settings = WorkerProcessSettings()
    assert settings.dispatch.retry_delays_s == (0.2, 0.5)
    assert settings.dispatch.breaker_open_s == 3.0
    assert settings.providers.email_secondary is None
    assert settings.providers.sendgrid_api_key is not None
    assert settings.providers.sendgrid_api_key.get_secret_value() == "real-key"
    assert "real-key" not in repr(settings.providers)


@pytest.mark.parametrize("delays", ["[]", "[5, 1]", "[1, 1]", "[0, 1]"])
def test_retry_delays_must_be_positive_and_increasing(
    monkeypatch: pytest.MonkeyPatch, delays: str
) -> None:
    monkeypatch.setenv("TRIBUTARY_DISPATCH_RETRY_DELAYS_S", delays)
    with pytest.raises(ValidationError, match="retry_delays_s"):
        WorkerProcessSettings()


def test_an_unknown_provider_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIBUTARY_PROVIDERS_SMS_PRIMARY", "carrier-pigeon")
    with pytest.raises(ValidationError, match="sms_primary"):
        WorkerProcessSettings()
