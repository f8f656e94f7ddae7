"""The roots: one `BaseSettings` per process, composed of only the sections that process uses.

Each entry point builds its root once from the `TRIBUTARY_*` environment and passes its sections
down; below the entry point, code asks for sections (`KafkaSettings`, `WorkerSettings`, ...), not
for a root. Every root reads the same variables the same way: the prefix `TRIBUTARY_`, then the
section and the field split on the first underscore (`TRIBUTARY_KAFKA_BOOTSTRAP` sets
`kafka.bootstrap`, `TRIBUTARY_DATABASE_URL` sets `database.url`); a variable for a section a root
does not have is ignored by that root.

- `WorkerProcessSettings` (`python -m agents`): database, redis, worker, dispatch, providers,
  security, metrics, notifications, operator;
- `ApiProcessSettings` (`python -m api`): database, redis, api, webhook, providers (receipt
  signatures), ratelimit, operator;
- `CliProcessSettings` (`tributary`): worker (app id, web address), dispatch (retry topics),
  operator, database (`tributary keys`, and the views `tributary trace` reads);
- `MigrationsProcessSettings` (`python -m streams.migrations`): database;
- `SandboxProcessSettings` (`python -m sandbox`): sandbox, webhook (the receipts' secret).

The first three are `KafkaProcessSettings`: kafka, topic_prefix and the Schema Registry. `Settings`
has every section, for tooling that starts several processes at once.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from streams.settings.secrets import secret_problems
from streams.settings.sections import (
    ApiSettings,
    DatabaseSettings,
    DispatchSettings,
    KafkaSettings,
    MetricsSettings,
    NotificationSettings,
    OperatorSettings,
    ProviderSettings,
    RateLimitSettings,
    RedisSettings,
    SandboxSettings,
    SecuritySettings,
    WebhookSettings,
    WorkerSettings,
)


class ProcessSettings(BaseSettings):
    """What every root shares: how `TRIBUTARY_*` is read, frozen, and the log level."""

    model_config = SettingsConfigDict(
        env_prefix="TRIBUTARY_",
        env_nested_delimiter="_",
        env_nested_max_split=1,
        frozen=True,
        extra="ignore",
    )

    log_level: str = "INFO"
    # JSON lines for machines (the default); "console" for a person at a terminal (`make dev`).
    log_format: Literal["json", "console"] = "json"
    # "dev" (`make dev`, the tests, the benchmarks) accepts the development secrets this
    # repository publishes; anything else refuses them (`streams.settings.secrets`).
    env: Literal["dev", "production"] = "production"
    # Net allocations between two collections of young objects (`streams.garbage_collection`,
    # which says why 200,000); 0 keeps CPython's own schedule (700).
    gc_young_objects: int = Field(default=200_000, ge=0)


def _refuse_bad_secrets(env: str, secrets: dict[str, SecretStr | None]) -> None:
    problems = secret_problems(secrets, env)
    if problems:
        raise ValueError("; ".join(problems))


class KafkaProcessSettings(ProcessSettings):
    """The common part of the processes that read or write Kafka (worker, API, CLI)."""

    kafka: KafkaSettings = KafkaSettings()
    # Prepended to every topic name (and Redis key), so that tests and tenants can share one
    # cluster.
    topic_prefix: str = ""
    # A Confluent Schema Registry to register our schemas in and take ids from. Unset, ids come
    # from the project's own schema set, which the API serves under `/schema-registry/`.
    # (Top-level rather than a `schema_registry` section: the nested delimiter is "_", so a
    # section's name must not be the start of a top-level field's, and this one reads naturally.)
    schema_registry_url: str | None = None
    schema_registry_timeout_s: float = Field(default=5.0, gt=0)


class WorkerProcessSettings(KafkaProcessSettings):
    """`python -m agents`: the Faust worker and every pipeline it runs."""

    database: DatabaseSettings = DatabaseSettings()
    redis: RedisSettings = RedisSettings()
    worker: WorkerSettings = WorkerSettings()
    dispatch: DispatchSettings = DispatchSettings()
    providers: ProviderSettings = ProviderSettings()
    security: SecuritySettings = SecuritySettings()
    metrics: MetricsSettings = MetricsSettings()
    notifications: NotificationSettings = NotificationSettings()
    operator: OperatorSettings = OperatorSettings()

    @model_validator(mode="after")
    def _secrets_usable(self) -> Self:
        _refuse_bad_secrets(self.env, self.operator.secrets() | self.providers.secrets())
        return self


class ApiProcessSettings(KafkaProcessSettings):
    """`python -m api`: the ingest and read API. `providers` is there for the providers' own
    receipt signatures (Twilio's auth token, SendGrid's public key, Meta's app secret)."""

    database: DatabaseSettings = DatabaseSettings()
    redis: RedisSettings = RedisSettings()
    api: ApiSettings = ApiSettings()
    webhook: WebhookSettings = WebhookSettings()
    providers: ProviderSettings = ProviderSettings()
    ratelimit: RateLimitSettings = RateLimitSettings()
    operator: OperatorSettings = OperatorSettings()

    @model_validator(mode="after")
    def _secrets_usable(self) -> Self:
        secrets = self.webhook.secrets() | self.operator.secrets() | self.providers.secrets()
        _refuse_bad_secrets(self.env, secrets)
        return self


class CliProcessSettings(KafkaProcessSettings):
    """`tributary`: the worker's app id (its consumer group) and web address, the dispatch
    retry delays (they name retry topics of the catalog) and the operator token."""

    worker: WorkerSettings = WorkerSettings()
    dispatch: DispatchSettings = DispatchSettings()
    operator: OperatorSettings = OperatorSettings()
    # `tributary keys` writes the API's keys there; `tributary trace` reads the views.
    database: DatabaseSettings = DatabaseSettings()


class ReplayProcessSettings(KafkaProcessSettings):
    """`tributary replay`: the database of the views it rebuilds, the worker's app id and batch
    size, and the security section (the sessions fold's cap on known devices)."""

    database: DatabaseSettings = DatabaseSettings()
    worker: WorkerSettings = WorkerSettings()
    security: SecuritySettings = SecuritySettings()


class MigrationsProcessSettings(ProcessSettings):
    """`python -m streams.migrations`: only the database."""

    database: DatabaseSettings = DatabaseSettings()


class SandboxProcessSettings(ProcessSettings):
    """`python -m sandbox`: where it listens and posts receipts, and `webhook.secret_providers`
    to sign them with."""

    sandbox: SandboxSettings = SandboxSettings()
    webhook: WebhookSettings = WebhookSettings()


class Settings(
    WorkerProcessSettings,
    ApiProcessSettings,
    CliProcessSettings,
    ReplayProcessSettings,
    MigrationsProcessSettings,
    SandboxProcessSettings,
):
    """Every section, for tooling that starts several processes at once and only for it: the
    benchmarks and `scripts/run_pipeline.py`, and the tests' fixtures that run worker, API and
    sandbox side by side. A process never builds it: each builds its own root above. Being a
    subclass of every root, it is accepted wherever a root is asked for.
    """
