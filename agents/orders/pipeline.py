"""Wiring of the orders pipeline into a Faust app: topic, table, agents and operator views.

The logic lives in `order_state` (the fold) and `order_materializer` (a batch); this module only
connects them to Faust. Records on `orders.events` must be keyed by the order id (UTF-8), as the
API produces them: the table is co-partitioned with the topic, and the web view finds the worker
owning a key by hashing the key the same way the producer did.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import faust
from faust.types import AgentT, EventT, TableT, TopicT

from agents.orders.materializer import OrderMaterializer, OrdersTable, ViewSink
from agents.orders.window_stats import OrderWindowMaterializer, WindowSink
from agents.retry import Backoff
from schemas.analytics import OrdersWindowRecord
from schemas.orders import OrderEvent
from streams.kafka.catalog import TopicCatalog
from streams.kafka.wire import WireCodec, local_codec
from streams.runtime import (
    TopicPublisher,
    batch_agent,
    batch_size,
    describe_event,
    event_scope,
    raw_topic,
)
from streams.settings import WorkerSettings

TABLE_NAME = "orders"
AGENT_NAME = "materialize_orders"
STATS_AGENT = "materialize_order_stats"


@dataclass(frozen=True, slots=True)
class OrdersPipeline:
    topic: TopicT
    dead_letter_topic: TopicT
    table: TableT[bytes, dict[str, Any]]
    agent: AgentT[Any]
    materializer: OrderMaterializer[EventT[bytes]]


def register_orders(
    app: faust.App,
    catalog: TopicCatalog,
    worker: WorkerSettings,
    store: ViewSink,
    *,
    codec: WireCodec | None = None,
    backoff: Backoff | None = None,
) -> OrdersPipeline:
    """`codec` reads the records as the API wrote them: its ids, a Schema Registry's if one is
    configured (see `streams.kafka.codec.wire_codec`), else the project's own (the default)."""
    wire = codec or local_codec()
    source = catalog.orders_events
    topic = raw_topic(app, source.name)
    dead_letter_topic = raw_topic(app, catalog.dead_letters(source).name)
    # Keys are bytes so that Faust serializes them raw (a `str` key would be JSON, quoted), the
    # same bytes as the record key: the web view's routing hashes them like the producer did.
    table: TableT[bytes, dict[str, Any]] = app.Table(
        TABLE_NAME,
        partitions=catalog.partitions,
        key_type=bytes,
        help="Latest OrderView of every order, as JSON, by order id.",
    )
    orders_table: OrdersTable = table
    materializer: OrderMaterializer[EventT[bytes]] = OrderMaterializer(
        table=orders_table,
        decode=lambda raw: wire.decode(raw, OrderEvent),
        views=store,
        dead_letters=TopicPublisher(dead_letter_topic),
        describe=describe_event,
        scope=event_scope,
        backoff=backoff or Backoff(),
    )
    agent = batch_agent(
        app,
        topic,
        AGENT_NAME,
        materializer.process,
        batch_size(worker),
        stats=materializer.stats,
    )
    return OrdersPipeline(topic, dead_letter_topic, table, agent, materializer)


def register_order_stats(
    app: faust.App,
    catalog: TopicCatalog,
    worker: WorkerSettings,
    store: WindowSink,
    *,
    codec: WireCodec | None = None,
    backoff: Backoff | None = None,
) -> OrderWindowMaterializer[EventT[bytes]]:
    """`materialize_order_stats`: the closed windows of `analytics.orders` into PostgreSQL."""
    wire = codec or local_codec()
    topic = raw_topic(app, catalog.analytics_output("analytics.orders").name)
    materializer: OrderWindowMaterializer[EventT[bytes]] = OrderWindowMaterializer(
        decode=lambda raw: wire.decode(raw, OrdersWindowRecord),
        windows=store,
        describe=describe_event,
        backoff=backoff or Backoff(),
    )
    batch_agent(
        app, topic, STATS_AGENT, materializer.process, batch_size(worker), stats=materializer.stats
    )
    return materializer
