"""Wiring of `report_undeliverable` into a Faust app: the tracker's own transitions on
`notifications.status` -> `notifications.suppressions` (logic in `agents.deliverability.reports`).

The agent filters on the record's `source` header before decoding, so the status topic's bulk
(queued, sending, sent, written by the router and the dispatcher) costs it no decoding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import faust
from faust.types import AgentT, EventT

from agents.deliverability.reports import ReportBatch
from agents.retry import Backoff
from agents.tracking.tracker import is_own_record
from schemas.notifications import NotificationStatusEvent
from streams.kafka.catalog import TopicCatalog
from streams.kafka.wire import WireCodec, local_codec
from streams.runtime import (
    Batch,
    TopicPublisher,
    batch_agent,
    batch_size,
    describe_event,
    raw_topic,
)
from streams.settings import WorkerSettings

AGENT_NAME = "report_undeliverable"


@dataclass(frozen=True, slots=True)
class DeliverabilityPipeline:
    reporter: ReportBatch[EventT[bytes]]
    agent: AgentT[Any]


def register_deliverability(
    app: faust.App,
    catalog: TopicCatalog,
    worker: WorkerSettings,
    *,
    codec: WireCodec | None = None,
) -> DeliverabilityPipeline:
    wire = codec or local_codec()
    status = catalog.for_topic("notifications.status")
    reporter: ReportBatch[EventT[bytes]] = ReportBatch(
        decode=lambda raw: wire.decode(raw, NotificationStatusEvent),
        encode=wire.encode,
        reports=TopicPublisher(
            raw_topic(app, catalog.for_topic("notifications.suppressions").name)
        ),
        dead_letters=TopicPublisher(raw_topic(app, catalog.dead_letters(status).name)),
        describe=describe_event,
        backoff=Backoff(),
    )

    async def report_undeliverable(events: Batch) -> None:
        await reporter.process([e for e in events if is_own_record(e.message.headers)])

    agent = batch_agent(
        app, raw_topic(app, status.name), AGENT_NAME, report_undeliverable, batch_size(worker)
    )
    return DeliverabilityPipeline(reporter, agent)
