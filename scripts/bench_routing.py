"""Routing throughput without Kafka: requests/s through route_notifications' batch logic.

Runs `RouteBatch` (decode, route, render, encode) over in-memory tables and sinks, so the figure
is the router's own CPU cost per notification, the ceiling the agent can reach on this machine.
Usage: `python scripts/bench_routing.py [requests] [users]`.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from agents.retry import Backoff
from agents.routing.rendering import TemplateRenderer
from agents.routing.route_batch import RouteBatch, RouteSinks
from agents.routing.router import Router
from agents.routing.rules import requests_for
from schemas.notifications import NotificationRequestEvent
from schemas.orders import OrderEvent
from schemas.users import UserEvent
from streams.kafka.wire import decode, encode
from streams.runtime import OutgoingRecord, SourceRecord
from streams.settings import NotificationSettings

BATCH = 500


class NullSink:
    def __init__(self) -> None:
        self.count = 0

    async def send_all(self, records: Sequence[OutgoingRecord]) -> None:
        self.count += len(records)


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


async def main(requests: int, users: int) -> None:
    created, asks = records(requests, users)
    dispatch = NullSink()
    settings = NotificationSettings(throttles=())
    batch: RouteBatch[SourceRecord] = RouteBatch(
        router=Router(settings, TemplateRenderer()),
        users_topic="users",
        decode_user=lambda raw: decode(raw, UserEvent),
        decode_request=lambda raw: decode(raw, NotificationRequestEvent),
        encode=encode,
        contacts={},
        routing={},
        deferred={},
        sinks=RouteSinks(dispatch, NullSink(), NullSink(), NullSink(), NullSink()),
        describe=lambda record: record,
        release_of=lambda record: None,
        scope=no_scope,
        clock=lambda: datetime.now(UTC),
        backoff=Backoff(),
    )
    for start in range(0, len(created), BATCH):
        await batch.process(created[start : start + BATCH])
    started = time.perf_counter()
    for start in range(0, len(asks), BATCH):
        await batch.process(asks[start : start + BATCH])
    elapsed_s = time.perf_counter() - started
    print(
        f"routed {requests} requests for {users} users into {dispatch.count} dispatches "
        f"in {elapsed_s:.2f} s: {requests / elapsed_s:,.0f} requests/s"
    )


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    people = int(sys.argv[2]) if len(sys.argv) > 2 else 2_000
    asyncio.run(main(count, people))
