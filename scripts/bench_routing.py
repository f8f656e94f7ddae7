"""Routing throughput without Kafka: requests/s through route_notifications' batch logic.

Runs `RouteBatch` (decode, route, render, encode) over in-memory tables and sinks, so the figure
is the router's own CPU cost per notification, the ceiling the agent can reach on this machine.
Two figures: the users' user.created events (each folds a contact and routes a welcome, the
notification loop's path) and then order requests for those users. It collects garbage on the
worker's schedule (`streams.garbage_collection`), as the agent does.
Usage: `python scripts/bench_routing.py [requests] [users]`.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from agents.retry import Backoff
from agents.routing.rendering import TemplateRenderer
from agents.routing.route_batch import RouteBatch, RouteSinks, SuppressionFeed
from agents.routing.router import Router
from agents.routing.rules import requests_for
from schemas.notifications import NotificationRequestEvent
from schemas.orders import OrderEvent
from schemas.suppressions import SuppressionEvent
from schemas.users import UserEvent
from streams.garbage_collection import schedule_collections
from streams.kafka.wire import decode, encode
from streams.runtime import OutgoingRecord, SourceRecord
from streams.settings import NotificationSettings
from streams.settings.processes import ProcessSettings
from streams.stores.suppression_store import SuppressionRow

BATCH = 500


class NullSink:
    def __init__(self) -> None:
        self.count = 0

    async def send_all(self, records: Sequence[OutgoingRecord]) -> None:
        self.count += len(records)


class NullSuppressionStore:
    async def replace(self, user_ids: Sequence[str], rows: Sequence[SuppressionRow]) -> int:
        return len(rows)


@dataclass(frozen=True)
class Timed:
    events: int
    dispatches: int
    elapsed_s: float
    cpu_s: float

    def line(self, what: str) -> str:
        return (
            f"{self.events} {what} into {self.dispatches} dispatches in {self.elapsed_s:.2f} s:"
            f" {self.events / self.elapsed_s:,.0f}/s,"
            f" {self.cpu_s / self.events * 1e6:.1f} µs CPU each"
        )


@contextmanager
def no_scope(_item: SourceRecord) -> Iterator[None]:
    yield


def _event(model: type[Any], event_type: str, payload: dict[str, Any]) -> Any:
    now = datetime.now(UTC)
    return model.model_validate(
        {
            "event_id": uuid.uuid4(),
            "event_type": event_type,
            "occurred_at": now,
            "ingested_at": now,
            "source": "bench",
            "correlation_id": "bench",
            "payload": payload,
        }
    )


def records(requests: int, users: int) -> tuple[list[SourceRecord], list[SourceRecord]]:
    user_ids = [f"u{n}" for n in range(users)]
    created = [
        SourceRecord(
            "users",
            0,
            n,
            None,
            encode(
                _event(
                    UserEvent,
                    "user.created",
                    {
                        "user_id": user,
                        "email": f"{user}@example.com",
                        "locale": "en",
                        "time_zone": "UTC",
                    },
                )
            ),
        )
        for n, user in enumerate(user_ids)
    ]
    asks = []
    for n in range(requests):
        order = {
            "id": f"o{n}",
            "user_id": user_ids[n % users],
            "status": "refunded",
            "currency": "EUR",
            "total_minor": 100,
            "items": [{"sku": "s", "quantity": 1, "unit_price_minor": 100}],
        }
        (request,) = requests_for(
            _event(OrderEvent, "order.refunded", order), now=datetime.now(UTC)
        )
        asks.append(SourceRecord("requests", 0, n, None, encode(request)))
    return created, asks


async def _timed(
    batch: RouteBatch[SourceRecord], feed: Sequence[SourceRecord], dispatch: NullSink
) -> Timed:
    before = dispatch.count
    started, started_cpu = time.perf_counter(), time.process_time()
    for start in range(0, len(feed), BATCH):
        await batch.process(feed[start : start + BATCH])
    elapsed_s, cpu_s = time.perf_counter() - started, time.process_time() - started_cpu
    return Timed(len(feed), dispatch.count - before, elapsed_s, cpu_s)


async def route(requests: int, users: int) -> tuple[Timed, Timed]:
    """The users' user.created (each routes a welcome), then the requests, each timed."""
    created, asks = records(requests, users)
    dispatch = NullSink()
    settings = NotificationSettings(throttles=())
    batch: RouteBatch[SourceRecord] = RouteBatch(
        router=Router(settings, TemplateRenderer()),
        users_topic="users",
        decode_user=lambda raw: decode(raw, UserEvent),
        decode_request=lambda raw: decode(raw, NotificationRequestEvent),
        encode=encode,
        routing={},
        legacy_contacts={},
        deferred={},
        suppressions=SuppressionFeed(
            topic="notifications.suppressions",
            decode=lambda raw: decode(raw, SuppressionEvent),
            table={},
            store=NullSuppressionStore(),
        ),
        sinks=RouteSinks(dispatch, NullSink(), NullSink(), NullSink(), NullSink(), NullSink()),
        describe=lambda record: record,
        release_of=lambda record: None,
        scope=no_scope,
        clock=lambda: datetime.now(UTC),
        backoff=Backoff(),
    )
    welcomes = await _timed(batch, created, dispatch)
    return welcomes, await _timed(batch, asks, dispatch)


def main() -> None:
    schedule_collections(ProcessSettings.model_fields["gc_young_objects"].default)
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    people = int(sys.argv[2]) if len(sys.argv) > 2 else 2_000
    welcomes, routed = asyncio.run(route(count, people))
    print("routed", welcomes.line("user.created"))
    print("routed", routed.line(f"requests for {people} users"))


if __name__ == "__main__":
    main()
