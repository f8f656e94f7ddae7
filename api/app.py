"""The aiohttp application: one producer, one ledger and one order store per app.

The shared objects are built here without I/O (they connect on first use) and opened and closed
by the app's cleanup contexts, so a test can build as many apps as it likes in one process.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from api import health, metrics, orders, webhooks
from api.keys import CATALOG, LEDGER, METRICS, ORDER_STORE, PRODUCER, SETTINGS
from api.metrics import ApiMetrics, metrics_middleware
from api.problems import problem_middleware
from streams.catalog import TopicCatalog
from streams.event_producer import EventProducer
from streams.order_store import OrderStore
from streams.settings import Settings
from streams.webhook_ledger import WebhookLedger

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> web.Application:
    app_metrics = ApiMetrics()
    app = web.Application(
        # Metrics outermost, so they count the status of the problem answer actually sent.
        middlewares=[
            metrics_middleware(app_metrics),
            problem_middleware(settings.api.retry_after_s),
        ],
        client_max_size=settings.api.max_body_bytes,
    )
    app[SETTINGS] = settings
    app[CATALOG] = TopicCatalog(settings)
    app[METRICS] = app_metrics
    app[PRODUCER] = EventProducer(settings.kafka)
    app[LEDGER] = WebhookLedger.from_settings(settings)
    app[ORDER_STORE] = OrderStore.from_settings(settings)
    app.cleanup_ctx.extend([_producer_lifetime, _ledger_lifetime, _order_store_lifetime])
    app.add_routes(webhooks.routes())
    app.add_routes(orders.routes())
    app.add_routes(health.routes())
    app.add_routes([web.get("/metrics", metrics.serve_metrics)])
    return app


async def _producer_lifetime(app: web.Application) -> AsyncIterator[None]:
    # Never fails: with Kafka down the API still starts, answers reads and reports not-ready.
    await app[PRODUCER].start()
    yield
    await app[PRODUCER].stop()


async def _ledger_lifetime(app: web.Application) -> AsyncIterator[None]:
    yield
    await app[LEDGER].close()


async def _order_store_lifetime(app: web.Application) -> AsyncIterator[None]:
    yield
    await app[ORDER_STORE].close()
