"""The worker process: `python -m agents`.

Start-up order matters: all topics, the tables' changelogs included, are created before Faust
subscribes (otherwise the broker may auto-create them with its own defaults, or the consumer
starts with no partitions), and the store is closed only after the agents have stopped (the
worker starts it before the Faust app, so it stops after it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import faust
from mode import Service

from agents.dispatch.pipeline import DISPATCH_AGENT, register_dispatch
from agents.metrics.pipeline import register_metrics
from agents.orders.pipeline import AGENT_NAME as ORDERS_AGENT
from agents.orders.pipeline import register_order_stats, register_orders
from agents.preferences.pipeline import AGENT_NAME as PREFERENCES_AGENT
from agents.preferences.pipeline import register_preferences
from agents.providers.pipeline import register_providers
from agents.retry import Backoff, retry_retriable
from agents.routing.pipeline import REQUEST_AGENT, ROUTE_AGENT, register_notifications
from agents.security.pipeline import (
    IPS_AGENT,
    USERS_AGENT,
    BlockStoreService,
    internal_topics,
    register_security,
    register_users_table,
)
from agents.sessions.pipeline import register_sessions
from agents.tracking.pipeline import AGENT_NAME as DELIVERIES_AGENT
from agents.tracking.pipeline import register_deliveries
from agents.tracking.retention import register_delivery_retention
from agents.worker.breaker_metrics import BreakerCollector
from agents.worker.metrics import WorkerMetrics, install_worker_metrics
from agents.worker.operator_views import register_operator_views
from streams.garbage_collection import schedule_collections
from streams.kafka.catalog import TopicCatalog
from streams.kafka.codec import wire_codec
from streams.kafka.compacted_topic import CompactedTopicReader
from streams.kafka.topic_admin import align_topic_configs, ensure_topics
from streams.kafka.wire import RECENT_ENCODES, WireCodec
from streams.runtime import (
    DeadlineWorker,
    StallWatchdog,
    changelog_specs,
    create_faust_app,
    register_health,
    worker_event_loop,
)
from streams.runtime.versions import check_runtime_versions
from streams.settings import WorkerProcessSettings, WorkerSettings
from streams.stores.block_store import BlockStore
from streams.stores.delivery_store import DeliveryStore
from streams.stores.order_store import OrderStore
from streams.stores.preferences_store import PreferencesStore
from streams.stores.provider_store import ProviderStore
from streams.stores.session_store import SessionStore
from streams.stores.suppression_store import SuppressionStore
from streams.structured_logs import logging_config

log = logging.getLogger(__name__)
T = TypeVar("T")

READY_MESSAGE = "tributary worker ready"


class StoreService(Service):
    """Owns the PostgreSQL engine for the lifetime of the worker."""

    def __init__(self, store: PostgresStore) -> None:
        super().__init__()
        self.store = store

    async def on_stop(self) -> None:
        await self.store.close()


class TemplatesService(Service):
    """Owns the reader of `notifications.templates` (the router's catalogue)."""

    def __init__(self, reader: CompactedTopicReader) -> None:
        super().__init__()
        self.reader = reader

    async def on_stop(self) -> None:
        await self.reader.close()


class TributaryWorker(DeadlineWorker):
    async def on_startup_finished(self) -> None:
        """Called once partitions are assigned and tables recovered: the worker is processing."""
        await super().on_startup_finished()
        conf = self.app.conf
        # To the real stdout (Faust redirects `print` into the log): scripts and tests wait for it.
        self.say(f"{READY_MESSAGE}: app {conf.id}, web {conf.canonical_url}")
        self.stdout.flush()


def topic_catalog(settings: WorkerProcessSettings) -> TopicCatalog:
    """The worker's topics, the dispatch retry topics included."""
    return TopicCatalog(settings.topic_prefix, settings.kafka, settings.dispatch.retry_delays_s)


PostgresStore = (
    OrderStore | DeliveryStore | SessionStore | ProviderStore | SuppressionStore | PreferencesStore
)


@dataclass(frozen=True, slots=True)
class WorkerStores:
    """What the pipelines write to and read from besides Kafka: built once, before the app, and
    owned by the worker's services (`services`), which close them after the agents stopped."""

    orders: OrderStore
    blocks: BlockStore
    deliveries: DeliveryStore
    sessions: SessionStore
    providers: ProviderStore
    suppressions: SuppressionStore
    preferences: PreferencesStore
    templates: CompactedTopicReader

    @classmethod
    def from_settings(cls, settings: WorkerProcessSettings, catalog: TopicCatalog) -> WorkerStores:
        database = settings.database
        return cls(
            orders=OrderStore.from_settings(database),
            blocks=BlockStore.from_settings(settings.redis, settings.topic_prefix),
            deliveries=DeliveryStore.from_settings(database),
            sessions=SessionStore.from_settings(database),
            providers=ProviderStore.from_settings(database),
            suppressions=SuppressionStore.from_settings(database),
            preferences=PreferencesStore.from_settings(database),
            templates=CompactedTopicReader(settings.kafka, catalog.templates.name, "templates"),
        )

    def services(self) -> list[Service]:
        postgres: list[PostgresStore] = [
            self.orders,
            self.deliveries,
            self.sessions,
            self.providers,
            self.suppressions,
            self.preferences,
        ]
        return [
            *(StoreService(store) for store in postgres),
            BlockStoreService(self.blocks),
            TemplatesService(self.templates),
        ]


def build_app(settings: WorkerProcessSettings, codec: WireCodec, stores: WorkerStores) -> faust.App:
    store, blocks, deliveries = stores.orders, stores.blocks, stores.deliveries
    app = create_faust_app(settings)
    catalog = topic_catalog(settings)
    worker = settings.worker
    metrics = WorkerMetrics()
    install_worker_metrics(app, metrics)
    orders = register_orders(app, catalog, worker, store, codec=codec)
    metrics.track_stats(ORDERS_AGENT, orders.materializer.stats)
    register_order_stats(app, catalog, worker, store.windows, codec=codec)
    # One table read by both folds of detect_suspicious_logins: the sessions fold carries over
    # the devices the old new-device rule kept there.
    security_users = register_users_table(app, catalog)
    user_sessions = register_sessions(
        app, catalog, settings.security, stores.sessions, codec, carried_from=security_users
    )
    security = register_security(
        app,
        catalog,
        worker,
        settings.security,
        blocks,
        codec,
        then=user_sessions.tracker.process_decoded,
        users_table=security_users,
    )
    metrics.track_stats(USERS_AGENT, security.users.stats)
    metrics.track_stats(IPS_AGENT, security.ips.stats)
    analytics = register_metrics(app, catalog, worker, settings.metrics, codec=codec)
    tracking = register_deliveries(
        app, catalog, worker, deliveries, codec=codec, transitions_out=analytics.publish_transitions
    )
    metrics.track_stats(DELIVERIES_AGENT, tracking.tracker.stats)
    register_delivery_retention(app, settings.notifications, deliveries)
    dispatch = register_dispatch(
        app, catalog, worker, settings.dispatch, settings.providers, codec=codec
    )
    metrics.track_stats(DISPATCH_AGENT, dispatch.dispatcher.stats)
    metrics.registry.register(BreakerCollector(dispatch.clients.breakers))
    register_providers(
        app,
        catalog,
        worker,
        settings.dispatch,
        settings.kafka,
        breakers=dispatch.clients.breakers,
        reset=dispatch.clients.reset,
        store=stores.providers,
    )
    notifications = register_notifications(
        app,
        catalog,
        worker,
        settings.notifications,
        stores.suppressions,
        stores.templates,
        codec=codec,
    )
    metrics.track_stats(REQUEST_AGENT, notifications.requester.stats)
    metrics.track_stats(ROUTE_AGENT, notifications.router.stats)
    user_preferences, _ = register_preferences(app, catalog, worker, stores.preferences, codec)
    metrics.track_stats(PREFERENCES_AGENT, user_preferences.stats)
    watchdog = watch_for_stalls(app, worker, on_restart=metrics.stall_recoveries.inc)
    metrics.watch_samples(lambda: watchdog.last_sample)
    register_operator_views(
        app, settings.operator, catalog.partitions, describe_consumer=watchdog.describe
    )
    register_health(
        app, watchdog, worker.stall_timeout_s, open_breakers=dispatch.clients.open_breakers
    )
    return app


def watch_for_stalls(
    app: faust.App, worker: WorkerSettings, on_restart: Callable[[], None]
) -> StallWatchdog:
    """The stall watchdog, looking every interval unless the timeout is 0 (then it only
    describes the consumer when asked)."""
    timeout_s = worker.stall_timeout_s

    def changelogs() -> list[str]:
        return [table.changelog_topic.get_topic_name() for table in app.tables.values()]

    watchdog = StallWatchdog(
        app, timeout_s=timeout_s, changelog_topics=changelogs, on_restart=on_restart
    )
    if timeout_s > 0:
        interval_s = worker.stall_check_interval_s
        app.timer(interval_s, name="watch_for_stalls")(watchdog.check)
    return watchdog


# A start's waits for Kafka: soon after a refusal, then every 5 s.
STARTUP_BACKOFF = Backoff(initial_s=0.5, max_s=5.0)


async def once_answering(step: Callable[[], Awaitable[T]], what: str, wait_s: float) -> T:
    """`step` of the worker's start, tried again while a service it needs does not answer
    (`worker.startup_wait_s`): a worker started while Kafka restarts starts once it is back.
    It exited at once before, which a chaos run showed (a worker SIGKILLed and started again
    just as the broker restarted, gone when the next kill came for it)."""
    return await retry_retriable(
        step, backoff=STARTUP_BACKOFF, what=f"worker start ({what})", give_up_after_s=wait_s
    )


def run(settings: WorkerProcessSettings) -> None:
    """Run the worker in the foreground until SIGINT/SIGTERM; never returns normally."""
    check_runtime_versions()
    loop = worker_event_loop()
    asyncio.set_event_loop(loop)
    # Faust creates only the last level of its data directory; a fresh checkout has none.
    Path(settings.worker.data_dir).mkdir(parents=True, exist_ok=True)
    wait_s = settings.worker.startup_wait_s
    codec = loop.run_until_complete(
        once_answering(
            lambda: wire_codec(settings, recent_encodes=RECENT_ENCODES), "the codec", wait_s
        )
    )
    catalog = topic_catalog(settings)
    stores = WorkerStores.from_settings(settings, catalog)
    app = build_app(settings, codec, stores)
    changelogs = changelog_specs(app, settings.kafka)
    # The changelogs' retention is the tables' (`worker.notification_tables_retention_days`):
    # a changed setting takes effect on the topics the tables had.
    loop.run_until_complete(
        once_answering(
            lambda: align_topic_configs(settings.kafka, changelogs), "changelog configs", wait_s
        )
    )
    topics = catalog.all() + changelogs + internal_topics(catalog, settings.worker.app_id)
    loop.run_until_complete(
        once_answering(lambda: ensure_topics(settings.kafka, topics), "topics", wait_s)
    )
    run_worker(app, settings, loop, stores.services())


def run_worker(
    app: faust.App,
    settings: WorkerProcessSettings,
    loop: asyncio.AbstractEventLoop,
    services: Sequence[Service] = (),
) -> None:
    """`app`'s worker in the foreground, `services` started and stopped with it (what the
    worker owns besides the app: its stores' connections, its readers)."""
    worker = TributaryWorker(
        app,
        *services,
        loglevel=settings.log_level,
        logging_config=logging_config(settings.log_level, settings.log_format),
        loop=loop,
        stop_timeout_s=settings.worker.stop_timeout_s,
    )
    schedule_collections(settings.gc_young_objects)
    worker.execute_from_commandline()
