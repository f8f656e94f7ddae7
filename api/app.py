"""The aiohttp application: one producer, ledger, order store and wire codec per app.

The shared objects are built here without I/O (they connect on first use) and opened and closed
by the app's cleanup contexts, so a test can build as many apps as it likes in one process.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from api import (
    health,
    metrics,
    notifications,
    openapi,
    orders,
    preferences,
    providers,
    rate_limits,
    receipts,
    schema_registry,
    sessions,
    suppressions,
    templates,
    webhooks,
)
from api.access import KeyVerifier, access_middleware
from api.codec import AppCodec
from api.delivery import Delivery
from api.keys import (
    ADMISSION,
    BLOCK_STORE,
    CATALOG,
    CODEC,
    DELIVERY,
    DELIVERY_STORE,
    KEY_VERIFIER,
    LEDGER,
    METRICS,
    ORDER_STORE,
    PREFERENCES_STORE,
    PRODUCER,
    PROVIDER_STORE,
    RATE_LIMITER,
    REGISTRY_VIEWS,
    SESSION_STORE,
    SETTINGS,
    SETTLEMENTS,
    SUPPRESSION_STORE,
    TEMPLATES,
)
from api.metrics import ApiMetrics, metrics_middleware
from api.problems import problem_middleware
from api.request_ids import request_id_middleware
from api.settlement import Settlements
from api.topic_check import TOPIC_CHECK, StartupTopicCheck, topic_check_lifetime
from schemas.registry import SchemaSet
from streams.errors import ServiceUnavailableError
from streams.kafka.catalog import TopicCatalog
from streams.kafka.compacted_topic import CompactedTopicReader
from streams.kafka.event_producer import EventProducer
from streams.kafka.schema_registry import RegistryViews
from streams.settings import ApiProcessSettings
from streams.stores.api_key_store import ApiKeyStore
from streams.stores.block_store import BlockStore
from streams.stores.delivery_store import DeliveryStore
from streams.stores.order_store import OrderStore
from streams.stores.preferences_store import PreferencesStore
from streams.stores.provider_store import ProviderStore
from streams.stores.rate_limiter import RateLimiter
from streams.stores.session_store import SessionStore
from streams.stores.suppression_store import SuppressionStore
from streams.stores.webhook_admission import WebhookAdmission
from streams.stores.webhook_ledger import WebhookLedger
from streams.templates.live import LiveTemplates
from streams.templates.sandbox import Sandbox

log = logging.getLogger(__name__)

# How many delivery timeouts a claim waits for its record's outcome after a 503 (`api.settlement`).
SETTLE_TIMEOUTS = 6


def create_app(settings: ApiProcessSettings) -> web.Application:
    app_metrics = ApiMetrics()
    app = web.Application(
        # Request ids outermost (every other layer and line knows the id), then metrics, so they
        # count the status of the problem answer actually sent.
        middlewares=[
            request_id_middleware(),
            metrics_middleware(app_metrics),
            problem_middleware(settings.api.retry_after_s),
            access_middleware(),
            rate_limits.reads_limit_middleware(),
        ],
        client_max_size=settings.api.max_body_bytes,
    )
    app[SETTINGS] = settings
    # The API never reads the dispatch retry topics, so its catalog is built without them.
    app[CATALOG] = TopicCatalog(settings.topic_prefix, settings.kafka)
    app[METRICS] = app_metrics
    app[PRODUCER] = EventProducer(settings.kafka)
    app[LEDGER] = WebhookLedger.from_settings(
        settings.redis,
        settings.webhook,
        topic_prefix=settings.topic_prefix,
        delivery_timeout_s=settings.kafka.delivery_timeout_s,
    )
    app[SETTLEMENTS] = Settlements(
        app[LEDGER],
        settle_s=SETTLE_TIMEOUTS * settings.kafka.delivery_timeout_s,
        on_settled=app_metrics.count_settled,
    )
    app[DELIVERY] = Delivery(app[LEDGER], app[PRODUCER], app[SETTLEMENTS])
    app[ORDER_STORE] = OrderStore.from_settings(settings.database)
    app[DELIVERY_STORE] = DeliveryStore.from_settings(settings.database)
    app[SESSION_STORE] = SessionStore.from_settings(settings.database)
    app[PROVIDER_STORE] = ProviderStore.from_settings(settings.database)
    app[SUPPRESSION_STORE] = SuppressionStore.from_settings(settings.database)
    app[CODEC] = AppCodec.from_settings(settings)
    app[BLOCK_STORE] = BlockStore.from_settings(settings.redis, settings.topic_prefix)
    app[RATE_LIMITER] = RateLimiter(
        app[BLOCK_STORE].client, settings.ratelimit, settings.topic_prefix
    )
    app[ADMISSION] = WebhookAdmission(app[RATE_LIMITER], app[LEDGER])
    app.cleanup_ctx.append(_block_store_lifetime)
    serves_schemas = settings.schema_registry_url is None
    if serves_schemas:
        app[REGISTRY_VIEWS] = RegistryViews(SchemaSet.load(), settings.topic_prefix)
    app.cleanup_ctx.extend(
        [
            _codec_lifetime,
            _producer_lifetime,
            _ledger_lifetime,
            _settlements_lifetime,
            _order_store_lifetime,
        ]
    )
    app.cleanup_ctx.append(_delivery_store_lifetime)
    app.cleanup_ctx.append(_session_store_lifetime)
    app.cleanup_ctx.append(_provider_store_lifetime)
    app.cleanup_ctx.append(_suppression_store_lifetime)
    app[PREFERENCES_STORE] = PreferencesStore.from_settings(settings.database)
    app.cleanup_ctx.append(_preferences_store_lifetime)
    app[KEY_VERIFIER] = KeyVerifier(
        ApiKeyStore.from_settings(settings.database),
        settings.api.key_cache_s,
        settings.api.key_cache_entries,
    )
    app.cleanup_ctx.append(_key_store_lifetime)
    reader = CompactedTopicReader(settings.kafka, app[CATALOG].templates.name, "api-templates")
    app[TEMPLATES] = LiveTemplates(reader)
    app[templates.WRITE_LOCK] = asyncio.Lock()
    app[templates.SANDBOX] = Sandbox()
    app.cleanup_ctx.append(_templates_lifetime)
    app[TOPIC_CHECK] = StartupTopicCheck()
    app.cleanup_ctx.append(topic_check_lifetime)
    app.add_routes(webhooks.routes())
    app.add_routes(schema_registry.routes(served=serves_schemas))
    app.add_routes(orders.routes())
    app.add_routes(rate_limits.routes())
    app.add_routes(receipts.routes())
    app.add_routes(notifications.routes())
    app.add_routes(sessions.routes())
    app.add_routes(providers.routes())
    app.add_routes(suppressions.routes())
    app.add_routes(templates.routes())
    app.add_routes(preferences.routes())
    app.add_routes(health.routes())
    app.add_routes(openapi.routes())
    app.add_routes([web.get("/metrics", metrics.serve_metrics)])
    return app


async def _codec_lifetime(app: web.Application) -> AsyncIterator[None]:
    # With a Schema Registry, register at start. A registry that is away is retried on use (503
    # until then); one that refuses our schemas is a deployment error and stops the start.
    codec = app[CODEC]
    if codec.uses_registry:
        try:
            await codec.codec()
        except ServiceUnavailableError as exc:
            log.warning("starting without registered schemas, will retry on use: %s", exc)
    yield
    await codec.close()


async def _producer_lifetime(app: web.Application) -> AsyncIterator[None]:
    # Never fails: with Kafka down the API still starts, answers reads and reports not-ready.
    await app[PRODUCER].start()
    yield
    await app[PRODUCER].stop()


async def _ledger_lifetime(app: web.Application) -> AsyncIterator[None]:
    yield
    await app[LEDGER].close()


async def _settlements_lifetime(app: web.Application) -> AsyncIterator[None]:
    # Cleaned up before the ledger and the producer: a late outcome is still recorded.
    yield
    await app[SETTLEMENTS].close(grace_s=app[SETTINGS].kafka.delivery_timeout_s)


async def _order_store_lifetime(app: web.Application) -> AsyncIterator[None]:
    yield
    await app[ORDER_STORE].close()


async def _delivery_store_lifetime(app: web.Application) -> AsyncIterator[None]:
    yield
    await app[DELIVERY_STORE].close()


async def _session_store_lifetime(app: web.Application) -> AsyncIterator[None]:
    yield
    await app[SESSION_STORE].close()


async def _provider_store_lifetime(app: web.Application) -> AsyncIterator[None]:
    yield
    await app[PROVIDER_STORE].close()


async def _suppression_store_lifetime(app: web.Application) -> AsyncIterator[None]:
    yield
    await app[SUPPRESSION_STORE].close()


async def _preferences_store_lifetime(app: web.Application) -> AsyncIterator[None]:
    yield
    await app[PREFERENCES_STORE].close()


async def _key_store_lifetime(app: web.Application) -> AsyncIterator[None]:
    yield
    await app[KEY_VERIFIER].store.close()


async def _templates_lifetime(app: web.Application) -> AsyncIterator[None]:
    yield
    await app[TEMPLATES].close()


async def _block_store_lifetime(app: web.Application) -> AsyncIterator[None]:
    yield
    await app[BLOCK_STORE].close()
