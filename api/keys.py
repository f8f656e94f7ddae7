"""Typed keys of the objects an app shares between its handlers (one of each per app)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from api.codec import AppCodec
from api.delivery import Delivery
from api.settlement import Settlements
from streams.kafka.catalog import TopicCatalog
from streams.kafka.event_producer import EventProducer
from streams.kafka.schema_registry import RegistryViews
from streams.settings import ApiProcessSettings
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

if TYPE_CHECKING:
    from api.access import KeyVerifier
    from api.metrics import ApiMetrics

SETTINGS = web.AppKey("settings", ApiProcessSettings)
CATALOG = web.AppKey("catalog", TopicCatalog)
PRODUCER = web.AppKey("producer", EventProducer)
LEDGER = web.AppKey("ledger", WebhookLedger)
# Claims of webhooks whose records' outcome a send's timeout left unknown (`api.settlement`).
SETTLEMENTS = web.AppKey("settlements", Settlements)
# The ledger, the producer and the settlements, as the webhook handlers deliver with them.
DELIVERY = web.AppKey("delivery", Delivery)
ORDER_STORE = web.AppKey("order_store", OrderStore)
DELIVERY_STORE = web.AppKey("delivery_store", DeliveryStore)
SESSION_STORE = web.AppKey("session_store", SessionStore)
PROVIDER_STORE = web.AppKey("provider_store", ProviderStore)
SUPPRESSION_STORE = web.AppKey("suppression_store", SuppressionStore)
PREFERENCES_STORE = web.AppKey("preferences_store", PreferencesStore)
CODEC = web.AppKey("codec", AppCodec)
# Share one Redis client, which the block store owns (and closes).
BLOCK_STORE = web.AppKey("block_store", BlockStore)
RATE_LIMITER = web.AppKey("rate_limiter", RateLimiter)
# A webhook's ingest limit and ledger claim, in one Redis call (the ledger's client).
ADMISSION = web.AppKey("admission", WebhookAdmission)
# The template catalogue, folded from `notifications.templates` (`api.templates`).
TEMPLATES = web.AppKey("templates", LiveTemplates)
# Only set when no Schema Registry is configured: then the API serves our own schema set.
REGISTRY_VIEWS = web.AppKey("registry_views", RegistryViews)
# Typed by annotation only: api.metrics itself reads this key.
METRICS: web.AppKey[ApiMetrics] = web.AppKey("metrics")
# Typed by annotation only: api.access itself reads this key.
KEY_VERIFIER: web.AppKey[KeyVerifier] = web.AppKey("key_verifier")
