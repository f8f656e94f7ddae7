"""The settings roots: one per process, each with only its sections, all reading the same
`TRIBUTARY_*` variables; and `Settings`, every section, for multi-process tooling."""

from __future__ import annotations

import os
from typing import Any

import pytest
from pydantic import BaseModel, SecretStr, ValidationError

from streams.settings import (
    ApiProcessSettings,
    CliProcessSettings,
    KafkaProcessSettings,
    MigrationsProcessSettings,
    ProcessSettings,
    ReplayProcessSettings,
    SandboxProcessSettings,
    Settings,
    WorkerProcessSettings,
)

ROOTS: tuple[type[ProcessSettings], ...] = (
    WorkerProcessSettings,
    ApiProcessSettings,
    CliProcessSettings,
    ReplayProcessSettings,
    MigrationsProcessSettings,
    SandboxProcessSettings,
)
EVERY_PROCESS = {"log_level", "log_format", "env", "gc_young_objects"}
KAFKA_COMMON = EVERY_PROCESS | {"kafka", "topic_prefix", "schema_registry_url"}
KAFKA_COMMON |= {"schema_registry_timeout_s"}
# What each process reads, and nothing else.
FIELDS: dict[type[ProcessSettings], set[str]] = {
    WorkerProcessSettings: KAFKA_COMMON
    | {"database", "redis", "worker", "dispatch", "providers", "security", "metrics"}
    | {"notifications", "operator"},
    ApiProcessSettings: KAFKA_COMMON
    | {"database", "redis", "api", "webhook", "providers", "ratelimit", "operator"},
    CliProcessSettings: KAFKA_COMMON | {"worker", "dispatch", "operator", "database"},
    ReplayProcessSettings: KAFKA_COMMON | {"database", "worker", "security"},
    MigrationsProcessSettings: EVERY_PROCESS | {"database"},
    SandboxProcessSettings: EVERY_PROCESS | {"sandbox", "webhook"},
}
# One variable per field of `Settings`, named as docker-compose.yml, the Makefile, the README
# and the tests name them: (field, attribute of the section or None, value set, value read).
VARIABLES: dict[str, tuple[str, str | None, str, Any]] = {
    "TRIBUTARY_LOG_LEVEL": ("log_level", None, "DEBUG", "DEBUG"),
    "TRIBUTARY_ENV": ("env", None, "dev", "dev"),
    "TRIBUTARY_LOG_FORMAT": ("log_format", None, "console", "console"),
    "TRIBUTARY_GC_YOUNG_OBJECTS": ("gc_young_objects", None, "0", 0),
    "TRIBUTARY_TOPIC_PREFIX": ("topic_prefix", None, "staging-", "staging-"),
    "TRIBUTARY_SCHEMA_REGISTRY_URL": (
        "schema_registry_url",
        None,
        "http://registry:8081",
        "http://registry:8081",
    ),
    "TRIBUTARY_SCHEMA_REGISTRY_TIMEOUT_S": ("schema_registry_timeout_s", None, "1.5", 1.5),
    "TRIBUTARY_KAFKA_BOOTSTRAP": ("kafka", "bootstrap", "a:9092,b:9092", "a:9092,b:9092"),
    "TRIBUTARY_DATABASE_URL": ("database", "url", "postgresql+asyncpg://u:p@db/x", None),
    "TRIBUTARY_REDIS_URL": ("redis", "url", "redis://cache:6379/1", None),
    "TRIBUTARY_API_PORT": ("api", "port", "8181", 8181),
    "TRIBUTARY_WEBHOOK_SECRET_PROVIDERS": ("webhook", "secret_providers", "whsec_cA==", None),
    "TRIBUTARY_WORKER_APP_ID": ("worker", "app_id", "tributary-eu", "tributary-eu"),
    "TRIBUTARY_DISPATCH_RETRY_DELAYS_S": ("dispatch", "retry_delays_s", "[2, 4]", (2.0, 4.0)),
    "TRIBUTARY_PROVIDERS_SMTP_HOST": ("providers", "smtp_host", "mail", "mail"),
    "TRIBUTARY_SECURITY_USER_FAILURES": ("security", "user_failures", "7", 7),
    "TRIBUTARY_RATELIMIT_BURST": ("ratelimit", "burst", "9", 9),
    "TRIBUTARY_OPERATOR_TOKEN": ("operator", "token", "op-token", None),
    "TRIBUTARY_METRICS_TUMBLING_S": ("metrics", "tumbling_s", "30", 30),
    "TRIBUTARY_SANDBOX_HTTP_PORT": ("sandbox", "http_port", "8191", 8191),
    "TRIBUTARY_NOTIFICATIONS_FALLBACK_LOCALE": ("notifications", "fallback_locale", "fr", "fr"),
}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No `TRIBUTARY_*` variable of the shell running the tests leaks into a root here."""
    for name in [name for name in os.environ if name.startswith("TRIBUTARY_")]:
        monkeypatch.delenv(name)


def _read(settings: BaseModel, field: str, attribute: str | None) -> Any:
    value = getattr(settings, field)
    if attribute is not None:
        value = getattr(value, attribute)
    return value.get_secret_value() if isinstance(value, SecretStr) else value


@pytest.mark.parametrize("root", ROOTS, ids=lambda root: root.__name__)
def test_a_root_has_only_the_sections_its_process_uses(root: type[ProcessSettings]) -> None:
    assert set(root.model_fields) == FIELDS[root]


@pytest.mark.parametrize("root", ROOTS, ids=lambda root: root.__name__)
def test_a_root_reads_each_of_its_sections_from_the_usual_variables(
    root: type[ProcessSettings], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, (_field, _attribute, value, _read_as) in VARIABLES.items():
        monkeypatch.setenv(name, value)
    settings = root()
    for name, (field, attribute, value, read_as) in VARIABLES.items():
        if field in FIELDS[root]:
            expected = value if read_as is None else read_as
            assert _read(settings, field, attribute) == expected, name
        else:
            assert not hasattr(settings, field), f"{root.__name__} carries {field}"


def test_every_field_of_every_root_has_its_variable_in_the_table() -> None:
    assert {field for field, *_ in VARIABLES.values()} == set(Settings.model_fields)


def test_a_root_ignores_variables_of_sections_it_does_not_have(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An API port out of range stops the API, not the worker, the CLI or the migrations."""
    monkeypatch.setenv("TRIBUTARY_API_PORT", "70000")
    with pytest.raises(ValidationError, match=r"api\.port"):
        ApiProcessSettings()
    for root in (WorkerProcessSettings, CliProcessSettings, MigrationsProcessSettings):
        root()


def test_the_kafka_processes_share_one_base() -> None:
    for root in (WorkerProcessSettings, ApiProcessSettings, CliProcessSettings):
        assert issubclass(root, KafkaProcessSettings)
    for root in (MigrationsProcessSettings, SandboxProcessSettings):
        assert not issubclass(root, KafkaProcessSettings)
    for root in ROOTS:
        assert root.model_config == ProcessSettings.model_config


def test_settings_has_every_section_and_stands_for_every_root() -> None:
    assert set(Settings.model_fields) == set().union(*FIELDS.values())
    for root in ROOTS:
        assert issubclass(Settings, root)


@pytest.mark.parametrize("root", [*ROOTS, Settings], ids=lambda root: root.__name__)
def test_roots_are_frozen(root: type[ProcessSettings]) -> None:
    settings = root()
    with pytest.raises(ValidationError, match="frozen"):
        settings.log_level = "DEBUG"  # type: ignore[misc]


@pytest.mark.parametrize("root", ROOTS, ids=lambda root: root.__name__)
def test_secrets_stay_out_of_reprs(
    root: type[ProcessSettings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRIBUTARY_DATABASE_URL", "postgresql+asyncpg://u:hunter2@db/x")
    monkeypatch.setenv("TRIBUTARY_WEBHOOK_SECRET_PROVIDERS", "whsec_hunter2")
    monkeypatch.setenv("TRIBUTARY_OPERATOR_TOKEN", "hunter2-token")
    assert "hunter2" not in repr(root())


def test_no_secret_has_a_working_default() -> None:
    """Unset, a family's webhooks are refused, the sandbox posts no receipts and the operator
    endpoints answer 403."""
    for webhook in (ApiProcessSettings().webhook, SandboxProcessSettings().webhook):
        for family in ("orders", "users", "auth", "providers"):
            assert webhook.secret_for(family) is None
    for settings in (WorkerProcessSettings(), ApiProcessSettings(), CliProcessSettings()):
        assert settings.operator.token is None


def test_defaults_point_at_the_local_stack() -> None:
    worker, api = WorkerProcessSettings(), ApiProcessSettings()
    assert worker.kafka.bootstrap == api.kafka.bootstrap == "127.0.0.1:9092"
    assert "127.0.0.1:55432" in MigrationsProcessSettings().database.url.get_secret_value()
    assert api.redis.url.get_secret_value().startswith("redis://127.0.0.1:56379")
    assert (api.api.port, worker.worker.web_port) == (8080, 6066)
    assert SandboxProcessSettings().sandbox.api_url == "http://127.0.0.1:8080"


def test_no_schema_registry_by_default() -> None:
    settings = CliProcessSettings()
    assert settings.schema_registry_url is None
    assert settings.schema_registry_timeout_s == 5.0


def test_nested_values_split_on_the_first_underscore_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIBUTARY_KAFKA_DELIVERY_TIMEOUT_S", "2.5")
    monkeypatch.setenv("TRIBUTARY_WEBHOOK_SECRET_ORDERS", "whsec_c2VjcmV0")
    settings = ApiProcessSettings()
    assert settings.kafka.delivery_timeout_s == 2.5
    secret = settings.webhook.secret_for("orders")
    assert secret is not None
    assert secret.get_secret_value() == "whsec_c2VjcmV0"
