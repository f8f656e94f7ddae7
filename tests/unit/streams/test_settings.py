from __future__ import annotations

import pytest

from streams.settings import Settings


def test_defaults_point_at_the_local_stack() -> None:
    settings = Settings(_env_file=None)
    assert settings.kafka.bootstrap == "127.0.0.1:9092"
    assert "127.0.0.1:55432" in settings.database.url.get_secret_value()
    assert settings.redis.url.get_secret_value().startswith("redis://127.0.0.1:56379")
    assert (settings.api.port, settings.worker.web_port) == (8080, 6066)


def test_documented_variables_reach_nested_sections(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIBUTARY_KAFKA_BOOTSTRAP", "broker-a:9092,broker-b:9092")
    monkeypatch.setenv("TRIBUTARY_DATABASE_URL", "postgresql+asyncpg://u:p@db:5432/x")
    monkeypatch.setenv("TRIBUTARY_REDIS_URL", "redis://cache:6379/1")
    monkeypatch.setenv("TRIBUTARY_WEBHOOK_SECRET_ORDERS", "whsec_c2VjcmV0")
    monkeypatch.setenv("TRIBUTARY_KAFKA_DELIVERY_TIMEOUT_S", "2.5")
    monkeypatch.setenv("TRIBUTARY_TOPIC_PREFIX", "staging-")
    settings = Settings()
    assert settings.kafka.bootstrap == "broker-a:9092,broker-b:9092"
    assert settings.kafka.delivery_timeout_s == 2.5
    assert settings.database.url.get_secret_value() == "postgresql+asyncpg://u:p@db:5432/x"
    assert settings.redis.url.get_secret_value() == "redis://cache:6379/1"
    secret = settings.webhook.secret_for("orders")
    assert secret is not None
    assert secret.get_secret_value() == "whsec_c2VjcmV0"
    assert settings.topic_prefix == "staging-"


def test_secrets_stay_out_of_reprs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIBUTARY_DATABASE_URL", "postgresql+asyncpg://u:hunter2@db/x")
    assert "hunter2" not in repr(Settings())


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(ValueError, match="frozen"):
        settings.topic_prefix = "x"  # type: ignore[misc]


def test_invalid_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIBUTARY_API_PORT", "70000")
    with pytest.raises(ValueError, match=r"api\.port"):
        Settings()


def test_no_schema_registry_by_default() -> None:
    settings = Settings(_env_file=None)
    assert settings.schema_registry_url is None
    assert settings.schema_registry_timeout_s == 5.0


def test_the_schema_registry_variables_reach_top_level_fields(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRIBUTARY_SCHEMA_REGISTRY_URL", "http://registry:8081")
    monkeypatch.setenv("TRIBUTARY_SCHEMA_REGISTRY_TIMEOUT_S", "1.5")
    settings = Settings()
    assert settings.schema_registry_url == "http://registry:8081"
    assert settings.schema_registry_timeout_s == 1.5
