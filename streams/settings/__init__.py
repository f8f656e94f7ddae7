"""Configuration, read from `TRIBUTARY_*` environment variables once per process.

`sections` holds the frozen section models (`KafkaSettings`, `WorkerSettings`, ...) that code
below an entry point asks for; `processes` holds the roots, one per process, each composed of
only the sections that process uses, and `Settings`, every section, for multi-process tooling.
`protocols` names the few pieces of a root that some functions need together.
"""

from streams.settings.processes import (
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
from streams.settings.protocols import FaustAppConfig, SchemaRegistryConfig
from streams.settings.sections import (
    HTTP_PROVIDER_CREDENTIALS,
    ApiSettings,
    DatabaseSettings,
    DispatchSettings,
    KafkaSettings,
    MetricsSettings,
    NotificationSettings,
    OperatorSettings,
    ProviderName,
    ProviderSettings,
    RateLimitSettings,
    RedisSettings,
    SandboxSettings,
    SecuritySettings,
    SourceRateLimit,
    ThrottleLimit,
    WebhookSettings,
    WorkerSettings,
)

__all__ = [
    "HTTP_PROVIDER_CREDENTIALS",
    "ApiProcessSettings",
    "ApiSettings",
    "CliProcessSettings",
    "DatabaseSettings",
    "DispatchSettings",
    "FaustAppConfig",
    "KafkaProcessSettings",
    "KafkaSettings",
    "MetricsSettings",
    "MigrationsProcessSettings",
    "NotificationSettings",
    "OperatorSettings",
    "ProcessSettings",
    "ProviderName",
    "ProviderSettings",
    "RateLimitSettings",
    "RedisSettings",
    "ReplayProcessSettings",
    "SandboxProcessSettings",
    "SandboxSettings",
    "SchemaRegistryConfig",
    "SecuritySettings",
    "Settings",
    "SourceRateLimit",
    "ThrottleLimit",
    "WebhookSettings",
    "WorkerProcessSettings",
    "WorkerSettings",
]
