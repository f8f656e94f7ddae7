"""Wiring of delivery tracking into a Faust app: `track_deliveries` on `notifications.status` +
`notifications.receipts` -> table `deliveries`, status transitions, suppression reports on
`notifications.suppressions`, PostgreSQL.

Both topics are keyed by notification id and have the catalog's partition count, so one agent
reading both (one Faust topic over two names) sees every transition of a notification on one
partition, the one whose `deliveries` table partition holds it. The logic is in
`agents.tracking.state` (the fold), `agents.tracking.tracker` (a batch) and
`agents.deliverability.reports` (what a bounce or a complaint reports).

The tracker reports the bounces and complaints it publishes itself: an agent of its own on
`notifications.status` would pay Faust's per-event cost for every status of every notification
(four each) to find the few the tracker already holds decoded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import faust
from faust.types import AgentT, EventT, TableT, TopicT

from agents.retry import Backoff
from agents.tracking.tracker import (
    DeliverySink,
    DeliveryTracker,
    Topics,
    TransitionsSink,
    ignore_transitions,
    is_tracked,
)
from schemas.notifications import NotificationReceiptEvent, NotificationStatusEvent
from streams.kafka.catalog import TopicCatalog
from streams.kafka.wire import WireCodec, local_codec
from streams.runtime import (
    Batch,
    TopicPublisher,
    batch_agent,
    batch_size,
    describe_event,
    event_scope,
    raw_topic,
)
from streams.settings import WorkerSettings

TABLE_NAME = "deliveries"
HELD_TABLE = "held_receipts"
AGENT_NAME = "track_deliveries"
# What the tracker reads: the notifications' own statuses and the providers' receipts.
INPUT_TOPICS = ("notifications.status", "notifications.receipts")


@dataclass(frozen=True, slots=True)
class DeliveriesPipeline:
    source: TopicT
    table: TableT[bytes, dict[str, Any]]
    agent: AgentT[Any]
    tracker: DeliveryTracker[EventT[bytes]]


def register_deliveries(
    app: faust.App,
    catalog: TopicCatalog,
    worker: WorkerSettings,
    store: DeliverySink,
    *,
    codec: WireCodec | None = None,
    backoff: Backoff | None = None,
    transitions_out: TransitionsSink = ignore_transitions,
) -> DeliveriesPipeline:
    wire = codec or local_codec()
    status, receipts = (catalog.for_topic(base) for base in INPUT_TOPICS)
    suppressions = catalog.for_topic("notifications.suppressions")
    source = raw_topic(app, status.name, receipts.name)
    table: TableT[bytes, dict[str, Any]] = app.Table(
        TABLE_NAME,
        partitions=catalog.partitions,
        key_type=bytes,
        help="Delivery state, attempts, provider and timeline of every notification, by id.",
        retention_s=worker.notification_tables_retention_s,
    )
    held: TableT[bytes, dict[str, Any]] = app.Table(
        HELD_TABLE,
        partitions=catalog.partitions,
        key_type=bytes,
        help="Receipts an earlier version held for their notification's sent status, by"
        " notification id: read and released, never written (now held in `deliveries`).",
    )
    dead_letters = {
        spec.name: TopicPublisher(raw_topic(app, catalog.dead_letters(spec).name))
        for spec in (status, receipts)
    }
    tracker: DeliveryTracker[EventT[bytes]] = DeliveryTracker(
        table=table,
        topics=Topics(status=status.name, receipts=receipts.name),
        decode_status=lambda raw: wire.decode(raw, NotificationStatusEvent),
        decode_receipt=lambda raw: wire.decode(raw, NotificationReceiptEvent),
        encode=wire.encode,
        store=store,
        status_out=TopicPublisher(raw_topic(app, status.name)),
        reports_out=TopicPublisher(raw_topic(app, suppressions.name)),
        dead_letters=dead_letters,
        describe=describe_event,
        scope=event_scope,
        backoff=backoff or Backoff(),
        transitions_out=transitions_out,
        held=held,
    )

    @table.on_recover
    async def forget_after_rebalance() -> None:
        # Between rebalances this worker alone writes its partitions' keys; after one, another
        # worker may have written some, so the tracker reads the table again.
        tracker.forget()

    async def track_deliveries(events: Batch) -> None:
        await tracker.process([e for e in events if is_tracked(e.message.headers)])

    agent = batch_agent(app, source, AGENT_NAME, track_deliveries, batch_size(worker))
    return DeliveriesPipeline(source, table, agent, tracker)
