"""The sections of the settings: one frozen model per concern, shared by the process roots.

Each section is what one part of the code asks for (`KafkaSettings`, `WorkerSettings`, ...); the
roots in `streams.settings.processes` compose them, so `TRIBUTARY_KAFKA_BOOTSTRAP` sets
`kafka.bootstrap` in every root that has a `kafka` section. Defaults match the local stack started
by `stack/stackctl.py`, so a fresh clone needs no configuration at all.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class KafkaSettings(_Section):
    bootstrap: str = "127.0.0.1:9092"
    client_id: str = "tributary"
    request_timeout_s: float = Field(default=10.0, gt=0)
    # How long the API waits for the broker's acknowledgement before answering 503.
    delivery_timeout_s: float = Field(default=10.0, gt=0)
    linger_ms: int = Field(default=5, ge=0)
    partitions: int = Field(default=6, ge=1)
    replication_factor: int = Field(default=1, ge=1)
    # How every client (API producer, worker, CLI, admin) authenticates and encrypts
    # (`streams.kafka.client_security`). SASL needs a username and password; SSL and SASL_SSL
    # verify the broker with `ssl_cafile` (the system's CAs when unset) and present
    # `ssl_certfile`/`ssl_keyfile` when the broker asks for a client certificate.
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "SCRAM-SHA-256"
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None

    @model_validator(mode="after")
    def _credentials_for_sasl(self) -> KafkaSettings:
        if self.security_protocol.startswith("SASL") and not (
            self.sasl_username and self.sasl_password
        ):
            raise ValueError(f"{self.security_protocol} needs sasl_username and sasl_password")
        return self


class DatabaseSettings(_Section):
    url: SecretStr = SecretStr("postgresql+asyncpg://tributary:tributary@127.0.0.1:55432/tributary")
    pool_size: int = Field(default=5, ge=1)
    # Connections opened beyond pool_size under load (closed again when returned).
    max_overflow: int = Field(default=10, ge=0)
    connect_timeout_s: float = Field(default=5.0, gt=0)
    # How long a caller waits for a connection when all are in use, and how long PostgreSQL
    # lets one statement run (0: no limit); either way the caller gets 503 with Retry-After.
    pool_timeout_s: float = Field(default=5.0, gt=0)
    statement_timeout_s: float = Field(default=15.0, ge=0)
    # Upper bound for one batched statement, in rows.
    batch_rows: int = Field(default=500, ge=1)


class RedisSettings(_Section):
    url: SecretStr = SecretStr("redis://127.0.0.1:56379/0")
    socket_timeout_s: float = Field(default=2.0, gt=0)


class ApiSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    max_body_bytes: int = Field(default=256 * 1024, ge=1024)
    # Seconds a client is told to wait (Retry-After) when Kafka cannot take a write.
    retry_after_s: int = Field(default=5, ge=1)
    # The API's URL as the outside world calls it (behind a proxy, say): Twilio signs the URL it
    # called. Unset, the URL of the request as it reached the API.
    public_url: str | None = None
    # How long a verified API key is trusted without asking PostgreSQL again: a revoked key
    # is refused at the latest this long after its revocation. 0: ask on every request.
    key_cache_s: float = Field(default=5.0, ge=0)
    key_cache_entries: int = Field(default=10_000, ge=1)


FAMILIES = ("orders", "users", "auth", "providers")


class WebhookSettings(_Section):
    secret_orders: SecretStr | None = None
    secret_users: SecretStr | None = None
    secret_auth: SecretStr | None = None
    # Signs provider delivery receipts (`POST /v1/webhooks/providers/{provider}`).
    secret_providers: SecretStr | None = None
    tolerance_s: int = Field(default=300, ge=1)
    dedupe_ttl_s: int = Field(default=24 * 3600, ge=1)
    # How long a duplicate delivery waits for the first copy's produce to settle.
    dedupe_wait_s: float = Field(default=15.0, gt=0)

    def secrets(self) -> dict[str, SecretStr | None]:
        """By setting name, for `streams.settings.secrets`."""
        return {f"webhook.secret_{family}": self.secret_for(family) for family in FAMILIES}

    def secret_for(self, family: str) -> SecretStr | None:
        secrets: dict[str, SecretStr | None] = {
            "orders": self.secret_orders,
            "users": self.secret_users,
            "auth": self.secret_auth,
            "providers": self.secret_providers,
        }
        return secrets.get(family)


WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})


class WorkerSettings(_Section):
    app_id: str = "tributary"
    web_host: str = "127.0.0.1"
    web_port: int = Field(default=6066, ge=0, le=65535)
    # "rocksdb://" keeps tables on disk between restarts; "memory://" is for throwaway workers.
    store: str = "rocksdb://"
    data_dir: str = ".stack/worker-data"
    # Materialization batches: at most this many events, or this long, whichever comes first.
    batch_events: int = Field(default=500, ge=1)
    batch_window_s: float = Field(default=0.2, gt=0)
    # Tables' changes are written to their changelogs at most this long after a batch is
    # processed, with those of every batch processed meanwhile (a key changed by several batches
    # is written once); the batches are acknowledged once written, so commits lag by as much.
    # 0: each batch's changes are written as soon as it is processed.
    changelog_flush_interval_s: float = Field(default=1.0, ge=0)
    # A worker that owns partitions with records waiting and receives nothing for this long
    # restarts its fetching, and crashes after as long again (`streams.runtime.stall_watchdog`); 0:
    # off.
    stall_timeout_s: float = Field(default=30.0, ge=0)
    # How long the worker's producer keeps trying to hand a record to Kafka before the send
    # fails (the agent then retries its batch with backoff); also bounds how long a stopping
    # worker flushes what Kafka will not take. Faust's own default is 20 minutes.
    send_timeout_s: float = Field(default=30.0, gt=0)
    # A stop (SIGTERM) not finished this long after it began logs every task's await chain and
    # ends the process (`streams.runtime.stop_deadline`); longer than `send_timeout_s`, which a
    # stopping worker's flush may take. Orchestrators' grace periods must exceed it.
    stop_timeout_s: float = Field(default=45.0, gt=0)
    # A worker starting while Kafka (or the schema registry) does not answer, as when both are
    # restarted together, waits for it this long, with backoff, before it gives up and exits
    # with the error (0: exits at once, for a supervisor to restart).
    startup_wait_s: float = Field(default=120.0, ge=0)
    # Copies of each table partition kept warm on other workers (Faust standbys): a takeover
    # needs no changelog replay, for the cost of every worker reading the others' changelogs.
    standby_replicas: int = Field(default=1, ge=0)
    # How long the tables keyed by notification (`deliveries`, `sent_ledger`) keep a
    # notification after its last change, so that what a fresh worker recovers, and what the
    # stores hold, stays bounded (a key per notification ever sent, otherwise). Long enough for
    # late receipts (providers retry webhooks for up to 3 days; complaints come within days),
    # retries and deferrals; 0 keeps every one (and their changelogs compacted only).
    notification_tables_retention_days: int = Field(default=14, ge=0)
    # Faust's Kafka transactions ("exactly_once") or not ("at_least_once", the default): measured
    # in the README's Reliability section, and why the default stays.
    processing_guarantee: Literal["at_least_once", "exactly_once"] = "at_least_once"
    stall_check_interval_s: float = Field(default=5.0, gt=0)
    # The URL the other workers reach this one at (Faust's canonical URL: table requests are
    # routed there, with the operator's token). Unset, http://<web_host>:<web_port>; a wildcard
    # bind host (0.0.0.0, ::) is no address of this worker, so it then needs this set.
    advertised_url: str | None = None

    @property
    def notification_tables_retention_s(self) -> int | None:
        days = self.notification_tables_retention_days
        return days * 24 * 3600 if days else None

    @model_validator(mode="after")
    def _stops_after_its_flush(self) -> WorkerSettings:
        if self.stop_timeout_s <= self.send_timeout_s:
            raise ValueError(
                f"worker.stop_timeout_s ({self.stop_timeout_s}) must exceed "
                f"worker.send_timeout_s ({self.send_timeout_s}): a stopping worker's flush may "
                "take that long"
            )
        return self

    @model_validator(mode="after")
    def _advertises_an_address(self) -> WorkerSettings:
        advertised = self.advertised_url
        host = urlsplit(advertised).hostname if advertised else self.web_host.strip("[]")
        if host in WILDCARD_HOSTS:
            raise ValueError(
                f"worker.advertised_url: the worker would advertise {host!r}, which is no "
                "address of it; set TRIBUTARY_WORKER_ADVERTISED_URL to the URL other workers "
                "reach it at"
            )
        return self


class OperatorSettings(_Section):
    # Bearer token for the operator endpoints (table views, lifting blocks). Unset, those
    # endpoints answer 403: an operator surface is never open by accident.
    token: SecretStr | None = None

    def secrets(self) -> dict[str, SecretStr | None]:
        return {"operator.token": self.token}


class MetricsSettings(_Section):
    """Windows of the metrics agent, in event time (seconds); see `agents.metrics.windows`.

    Windows close once the event-time watermark (latest event time seen, minus `grace_s`) passes
    their end; events later than that are counted as dropped. With no input for `idle_s`, event
    time is taken to advance with the stream's own clock (the workers' ticks, every `tick_s`),
    so the last windows close too.
    """

    tumbling_s: int = Field(default=60, ge=1)
    hopping_s: int = Field(default=300, ge=1)
    hopping_step_s: int = Field(default=60, ge=1)
    grace_s: int = Field(default=30, ge=0)
    idle_s: float = Field(default=60.0, gt=0)
    # How often each worker nudges the aggregator to close windows on an idle stream, and
    # reports which input partitions it owns and has read to their end.
    tick_s: float = Field(default=5.0, gt=0)
    # An input partition no live worker reports read to its end holds the watermark at its own
    # latest event while heard from within this, so a killed worker's partitions wait for their
    # next owner (the group's session timeout, 60 s, and more: a group that keeps losing
    # members rebalances for minutes, the chaos run's 3 minutes of kills left partitions
    # unreported for over 180 s) instead of having their events dropped as late. The cost: a
    # partition that is gone for good (its topic deleted) holds the windows this long.
    # 0: no partition holds; the watermark is the latest event of any.
    source_stall_s: float = Field(default=600.0, ge=0)
    # An event stamped further ahead of the wall clock counts, but moves the watermark no
    # further than this (a wrong clock upstream must not close every open window); 0: no cap.
    max_future_s: float = Field(default=300.0, ge=0)


class SecuritySettings(_Section):
    """Thresholds of the security agent: N failed logins within W seconds is a burst."""

    user_failures: int = Field(default=5, ge=1)
    user_window_s: int = Field(default=600, ge=1)
    ip_failures: int = Field(default=20, ge=1)
    ip_window_s: int = Field(default=600, ge=1)
    # How long a burst blocks the user or IP (from the burst's event time); Redis expires it.
    block_s: int = Field(default=900, ge=1)
    # Known devices kept per user (most recently seen first); older ones are forgotten.
    max_devices: int = Field(default=50, ge=1)


class SourceRateLimit(_Section):
    rate_per_s: float = Field(gt=0)
    burst: int = Field(ge=1)


class RateLimitSettings(_Section):
    """GCRA limits of the ingest API per source (a webhook family), `sources` overriding the
    default; as an env var `sources` is JSON: `{"orders": {"rate_per_s": 5, "burst": 10}}`."""

    enabled: bool = True
    rate_per_s: float = Field(default=100.0, gt=0)
    burst: int = Field(default=200, ge=1)
    sources: dict[str, SourceRateLimit] = Field(default_factory=dict)

    def for_source(self, source: str) -> SourceRateLimit:
        return self.sources.get(source) or SourceRateLimit(
            rate_per_s=self.rate_per_s, burst=self.burst
        )


class SandboxSettings(_Section):
    """The local provider sandbox (`python -m sandbox`): where it listens, where it posts its
    delivery receipts (signed with `webhook.secret_providers`), and how it batches them."""

    host: str = "127.0.0.1"
    http_port: int = Field(default=8090, ge=0, le=65535)
    smtp_port: int = Field(default=2525, ge=0, le=65535)
    api_url: str = "http://127.0.0.1:8080"
    receipt_delay_s: float = Field(default=0.2, ge=0)
    receipt_batch_max: int = Field(default=500, ge=1, le=500)
    # How long `*@slow.test` (and phones ending 0003, tokens `slow-`) wait for an answer.
    slow_s: float = Field(default=3.0, ge=0)
    # Received messages kept for `GET /_sandbox/messages` (oldest forgotten first).
    messages_max: int = Field(default=20_000, ge=1)


ProviderName = Literal["sendgrid", "smtp", "twilio", "fcm", "meta"]


class DispatchSettings(_Section):
    """How notifications are sent: retry schedule, per-channel concurrency, timeouts, breaker.

    `retry_delays_s` names the delayed retry topics (`notifications.dispatch.retry-1s`, ...) and
    bounds the attempts (one more than its length); as an env var it is a JSON list: `[1, 5, 30]`.
    """

    retry_delays_s: tuple[float, ...] = Field(default=(1.0, 5.0, 30.0), min_length=1)
    # Sends in flight per channel (email, sms, push, whatsapp), across the whole worker; four
    # channels at 128 fill the connection pool below without queueing for a connection.
    concurrency_per_channel: int = Field(default=128, ge=1)
    # Upper bound for one provider request, connection included.
    timeout_s: float = Field(default=10.0, gt=0)
    # A provider's circuit opens after `breaker_failure_threshold` consecutive retriable failures
    # once at least `breaker_min_requests` sends ended in the last `breaker_window_s`; it stays
    # open `breaker_open_s`, then half-open: `breaker_half_open_successes` probes that succeed
    # close it, one that fails opens it again (`streams.providers.circuit_breaker`).
    breaker_failure_threshold: int = Field(default=5, ge=1)
    breaker_min_requests: int = Field(default=10, ge=1)
    breaker_open_s: float = Field(default=60.0, gt=0)
    breaker_half_open_successes: int = Field(default=2, ge=1)
    breaker_window_s: float = Field(default=60.0, gt=0)
    # How often a worker publishes the breakers that changed (to `notifications.providers`), and
    # the longest it goes without republishing one that did not: a report older than three
    # heartbeats is from a worker that is gone, and no longer counts.
    breaker_report_s: float = Field(default=1.0, gt=0)
    breaker_heartbeat_s: float = Field(default=15.0, gt=0)
    # Connections kept to all providers together (one aiohttp session per worker).
    connection_pool_size: int = Field(default=512, ge=1)

    @field_validator("retry_delays_s")
    @classmethod
    def _increasing_positive(cls, delays_s: tuple[float, ...]) -> tuple[float, ...]:
        if any(delay_s <= 0 for delay_s in delays_s) or list(delays_s) != sorted(set(delays_s)):
            raise ValueError("retry delays must be positive and strictly increasing")
        return delays_s


# The credential of each HTTP provider: a provider without one is not sent through.
HTTP_PROVIDER_CREDENTIALS = (
    "sendgrid_api_key",
    "twilio_auth_token",
    "fcm_access_token",
    "meta_access_token",
)


class ProviderSettings(_Section):
    """Where and as whom each provider is called; defaults are the local provider sandbox.

    The credentials have no defaults: they come from the environment
    (`TRIBUTARY_PROVIDERS_SENDGRID_API_KEY`, ...; the Makefile sets the sandbox's development
    ones). A provider whose credential is unset is not used for sending (`provider_senders`), and
    its own receipt signatures are refused. `<channel>_primary` and
    `<channel>_secondary` pick the providers of a channel; the secondary takes over while the
    primary's circuit is open.
    """

    sendgrid_base_url: str = "http://127.0.0.1:8090"
    sendgrid_api_key: SecretStr | None = None
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=2525, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_start_tls: bool = False
    email_from: str = "notifications@tributary.test"
    twilio_base_url: str = "http://127.0.0.1:8090"
    twilio_account_sid: str = "ACdev0000000000000000000000000000"
    twilio_auth_token: SecretStr | None = None
    twilio_from: str = "+15550000000"
    # Where twilio posts status callbacks; our notification id is appended as a query parameter.
    twilio_status_callback_url: str = "http://127.0.0.1:8080/v1/webhooks/providers/twilio"
    # The providers' own receipt signatures (`api.provider_signatures`); Twilio's is the auth
    # token above. Unset, only Standard Webhooks signatures are accepted from that provider.
    sendgrid_webhook_public_key: str | None = None
    meta_app_secret: SecretStr | None = None
    fcm_base_url: str = "http://127.0.0.1:8090"
    fcm_project: str = "tributary-dev"
    fcm_access_token: SecretStr | None = None
    meta_base_url: str = "http://127.0.0.1:8090"
    meta_phone_number_id: str = "100000000000000"
    meta_access_token: SecretStr | None = None
    email_primary: ProviderName = "sendgrid"
    email_secondary: ProviderName | None = "smtp"
    sms_primary: ProviderName = "twilio"
    sms_secondary: ProviderName | None = None
    push_primary: ProviderName = "fcm"
    push_secondary: ProviderName | None = None
    whatsapp_primary: ProviderName = "meta"
    whatsapp_secondary: ProviderName | None = None

    def secrets(self) -> dict[str, SecretStr | None]:
        found: dict[str, SecretStr | None] = {
            f"providers.{n}": getattr(self, n) for n in HTTP_PROVIDER_CREDENTIALS
        }
        return (
            found
            | {"providers.smtp_password": self.smtp_password}
            | {"providers.meta_app_secret": self.meta_app_secret}
        )

    @field_validator(
        "email_secondary", "sms_secondary", "push_secondary", "whatsapp_secondary", mode="before"
    )
    @classmethod
    def _none_from_env(cls, value: object) -> object:
        """An env var cannot be None: `TRIBUTARY_PROVIDERS_EMAIL_SECONDARY=` (empty) unsets it."""
        return None if value in ("", "none") else value


class ThrottleLimit(_Section):
    """At most `limit` notifications per user on `channel` within any `window_s` seconds, counted
    per category; `category` None applies to every category without a limit of its own."""

    channel: Literal["email", "sms", "push", "whatsapp"]
    category: Literal["security", "account", "orders", "marketing"] | None = None
    limit: int = Field(ge=1)
    window_s: int = Field(ge=1)


class NotificationSettings(_Section):
    """Routing of notifications (rules, preferences, throttles, quiet hours, templates).

    `throttles` is a JSON list as an env var:
    `[{"channel": "sms", "limit": 5, "window_s": 3600}]`. Critical notifications are never
    throttled, deferred or suppressed by preferences.
    """

    throttles: tuple[ThrottleLimit, ...] = (
        ThrottleLimit(channel="sms", limit=5, window_s=3600),
        ThrottleLimit(channel="whatsapp", limit=5, window_s=3600),
        ThrottleLimit(channel="email", limit=20, window_s=24 * 3600),
        ThrottleLimit(channel="push", limit=20, window_s=3600),
    )
    # Locale of the templates used when the user's own (and its language) has none.
    fallback_locale: str = "en"
    # How often deferred notifications (quiet hours, awaiting a contact) are checked for release.
    deferral_check_interval_s: float = Field(default=5.0, gt=0)
    # A request for a user we have no contact record for yet waits this long, then is dropped
    # with status suppressed, reason no-contact (it is released at once when the user appears).
    contact_wait_s: float = Field(default=600.0, gt=0)
    # How long a routed notification id is remembered per user, so a re-delivered causing event
    # (Kafka redelivery, a replayed webhook) never sends twice; the topics keep 7 days.
    dedupe_ttl_s: int = Field(default=8 * 24 * 3600, ge=1)
    # Deliverability: a hard bounce or a spam complaint suppresses the address at once; soft
    # bounces (a temporary failure such as "452 4.2.2 mailbox full") once `soft_bounce_limit`
    # of them fall within `soft_bounce_window_s`.
    soft_bounce_limit: int = Field(default=3, ge=1)
    soft_bounce_window_s: int = Field(default=7 * 24 * 3600, ge=1)
    # How long a notification stays in the delivery views (`notification_deliveries` and its
    # timeline), by when it was created; 0 keeps every one. The statistics' rollups stay. Each
    # worker purges what is older every `deliveries_purge_interval_s`.
    deliveries_retention_days: int = Field(default=0, ge=0)
    deliveries_purge_interval_s: float = Field(default=3600.0, gt=0)
