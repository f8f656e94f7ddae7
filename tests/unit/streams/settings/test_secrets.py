"""No working default credentials: development values refused outside dev mode, no secret shared
by two purposes, and the Makefile's development values all known as such."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from streams.settings import (
    ApiProcessSettings,
    ProviderSettings,
    SandboxProcessSettings,
    WorkerProcessSettings,
)
from streams.settings.secrets import DEVELOPMENT_VALUES, secret_problems

REPO = Path(__file__).resolve().parents[4]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [name for name in os.environ if name.startswith("TRIBUTARY_")]:
        monkeypatch.delenv(name)


def test_provider_credentials_have_no_defaults() -> None:
    providers = ProviderSettings()
    assert providers.sendgrid_api_key is None
    assert providers.twilio_auth_token is None
    assert providers.fcm_access_token is None
    assert providers.meta_access_token is None
    assert all(value is None for value in providers.secrets().values())


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TRIBUTARY_OPERATOR_TOKEN", "dev-operator-token"),
        ("TRIBUTARY_PROVIDERS_TWILIO_AUTH_TOKEN", "dev-twilio-token"),
        ("TRIBUTARY_PROVIDERS_SENDGRID_API_KEY", "dev-sendgrid-key"),
    ],
)
def test_api_and_worker_refuse_a_development_value_outside_dev_mode(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    for root in (ApiProcessSettings, WorkerProcessSettings):
        with pytest.raises(ValidationError, match="published development value"):
            root()
    monkeypatch.setenv("TRIBUTARY_ENV", "dev")
    for root in (ApiProcessSettings, WorkerProcessSettings):
        assert root().env == "dev"


def test_the_api_refuses_the_old_shared_webhook_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "TRIBUTARY_WEBHOOK_SECRET_ORDERS", "whsec_ZGV2LW9ubHktd2ViaG9vay1zZWNyZXQtMzItYnl0ZXM="
    )
    with pytest.raises(ValidationError, match=r"webhook\.secret_orders holds a published"):
        ApiProcessSettings()


def test_one_secret_may_not_serve_two_families_even_in_dev_mode(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRIBUTARY_ENV", "dev")
    monkeypatch.setenv("TRIBUTARY_WEBHOOK_SECRET_ORDERS", "whsec_c2FtZQ==")
    monkeypatch.setenv("TRIBUTARY_WEBHOOK_SECRET_PROVIDERS", "whsec_c2FtZQ==")
    with pytest.raises(ValidationError, match=r"secret_orders, webhook\.secret_providers share"):
        ApiProcessSettings()


def test_the_operator_token_may_not_be_a_providers_credential(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRIBUTARY_OPERATOR_TOKEN", "one-value")
    monkeypatch.setenv("TRIBUTARY_PROVIDERS_TWILIO_AUTH_TOKEN", "one-value")
    for root in (ApiProcessSettings, WorkerProcessSettings):
        with pytest.raises(ValidationError, match="share one value"):
            root()


def test_own_distinct_secrets_are_accepted_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    for n, family in enumerate(("ORDERS", "USERS", "AUTH", "PROVIDERS")):
        monkeypatch.setenv(f"TRIBUTARY_WEBHOOK_SECRET_{family}", f"whsec_b3du{n}")
    monkeypatch.setenv("TRIBUTARY_OPERATOR_TOKEN", "own-operator-token")
    monkeypatch.setenv("TRIBUTARY_PROVIDERS_TWILIO_AUTH_TOKEN", "own-twilio-token")
    assert ApiProcessSettings().env == "production"
    assert WorkerProcessSettings().env == "production"


def test_the_sandbox_is_not_checked() -> None:
    """The sandbox is a development tool: it signs with what it is given."""
    webhook = {"secret_providers": SecretStr("dev-operator-token")}
    assert SandboxProcessSettings(webhook=webhook).webhook.secret_providers is not None


def test_every_secret_the_makefile_publishes_is_known_as_a_development_value() -> None:
    makefile = (REPO / "Makefile").read_text()
    published = re.findall(r"export TRIBUTARY_\w*(?:SECRET|TOKEN|KEY)\w* \?= (\S+)", makefile)
    assert len(published) == 9
    assert set(published) <= DEVELOPMENT_VALUES
    assert len(set(published)) == len(published), "one development value per secret"


def test_problems_name_the_settings() -> None:
    problems = secret_problems(
        {"a": SecretStr("dev-fcm-token"), "b": None, "c": SecretStr("x"), "d": SecretStr("x")},
        "production",
    )
    assert problems == [
        "a holds a published development value; set a secret of your own "
        "(or TRIBUTARY_ENV=dev on a development machine)",
        "c, d share one value; each needs its own secret",
    ]
