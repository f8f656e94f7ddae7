"""Wiring of the breakers' visibility into a Faust app: reports out, their view, commands in.

- `report_breakers`, a timer: this worker's breakers that changed -> `notifications.providers`
  (keyed `<provider>/<worker>`, compacted), through the app's one producer;
- `materialize_breaker_reports`, an agent: that topic -> `provider_breakers` in PostgreSQL, which
  the API serves at `/v1/providers` (the API never reads the workers, nor Faust);
- a `BroadcastConsumer` of `notifications.provider-commands`: every worker reads every command
  (a reset closes its own breaker of the provider), outside the consumer group.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import faust
from faust.types import AgentT

from agents.providers.materializer import BreakerMaterializer, BreakerSink
from agents.providers.reports import BreakerReporter, apply_commands, report_record
from streams.errors import RetriableError
from streams.kafka.catalog import TopicCatalog
from streams.providers.circuit_breaker import CircuitBreaker
from streams.runtime import (
    Batch,
    BroadcastConsumer,
    TopicPublisher,
    batch_agent,
    batch_size,
    raw_topic,
)
from streams.settings import DispatchSettings, KafkaSettings, WorkerSettings

log = logging.getLogger(__name__)

MATERIALIZE_AGENT = "materialize_breaker_reports"
REPORT_TIMER = "report_breakers"


@dataclass(frozen=True, slots=True)
class ProvidersPipeline:
    reporter: BreakerReporter
    materializer: BreakerMaterializer
    agent: AgentT[Any]
    commands: BroadcastConsumer


def register_providers(
    app: faust.App,
    catalog: TopicCatalog,
    worker: WorkerSettings,
    dispatch: DispatchSettings,
    kafka: KafkaSettings,
    *,
    breakers: Callable[[], Mapping[str, CircuitBreaker]],
    reset: Callable[[str], bool],
    store: BreakerSink,
) -> ProvidersPipeline:
    """`breakers`: this worker's breakers by provider; `reset`: close one (False if absent)."""
    # The app (a deployment's consumer group) and the worker's own web address: unique per worker.
    worker_name = f"{worker.app_id}@{app.conf.canonical_url}"
    reports_topic = raw_topic(app, catalog.notifications_providers.name)
    publisher = TopicPublisher(reports_topic)
    reporter = BreakerReporter(worker_name, dispatch.breaker_heartbeat_s)

    async def report_breakers() -> None:
        due = reporter.due(breakers())
        if not due:
            return
        try:
            await publisher.send_all([report_record(report) for _, report in due])
        except RetriableError as exc:
            log.warning("breaker reports not published, next tick tries again: %s", exc)
            return
        reporter.published(due)

    app.timer(dispatch.breaker_report_s, name=REPORT_TIMER)(report_breakers)

    materializer = BreakerMaterializer(store)

    async def materialize_breaker_reports(events: Batch) -> None:
        await materializer.process([event.value for event in events])

    agent = batch_agent(
        app,
        reports_topic,
        MATERIALIZE_AGENT,
        materialize_breaker_reports,
        batch_size(worker),
        stats=materializer.stats,
    )
    commands = BroadcastConsumer(
        kafka,
        catalog.notifications_provider_commands.name,
        lambda values: apply_commands(values, reset, worker_name),
        client_id=f"{worker.app_id}-provider-commands",
    )
    app.add_dependency(commands)
    return ProvidersPipeline(reporter, materializer, agent, commands)
