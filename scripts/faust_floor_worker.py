"""The floor worker's work on the agents' Faust runtime: `bench_notifications.py --floor-worker
faust` (or `faust-state`).

`floor_worker.py` measures the least a worker of the notification loop can do with aiokafka
alone. This does exactly the same work per notification (`floor_worker.FloorWork`: the same
reads, rows, status records, sends and state changes) as two agents of the runtime every
pipeline runs on (`streams.runtime`: `create_faust_app`, `batch_agent`, `raw_topic`,
`TopicPublisher`, and with `--state` a Faust table whose changes its changelog carries before
the offsets that caused them are committed):

- `notify_users` on `users.events`: each `user.created` -> a `queued` row, `queued`, one send,
  `sending` and `sent` (and the entry's change at the send);
- `track_receipts` on `notifications.receipts`: each delivered receipt -> the row delivered,
  `delivered` (and the entry's change).

So the difference between the two floors is what the programming model itself costs per
notification (Faust's consumer, events, agents, acknowledgements, tables, our runtime's
corrections), before any of the agents' logic; the issue's budget for a worker that keeps
"Faust agents and tables as the programming model" is judged against this one.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import faust
from faust.types import TableT
from floor_worker import STATE_TABLE, Change, FloorWork, Resources
from mode import Service

from agents.worker.process import run_worker
from streams.kafka.catalog import TopicCatalog
from streams.kafka.topic_admin import ensure_topics
from streams.runtime import (
    Batch,
    OutgoingRecord,
    TopicPublisher,
    batch_agent,
    batch_size,
    changelog_specs,
    create_faust_app,
    event_scope,
    raw_topic,
    worker_event_loop,
)
from streams.settings import WorkerProcessSettings


class ResourcesService(Service):
    """Closes the provider session and the database pool with the worker."""

    def __init__(self, resources: Resources) -> None:
        super().__init__()
        self.resources = resources

    async def on_stop(self) -> None:
        await self.resources.close()


def build_app(settings: WorkerProcessSettings, resources: Resources, *, state: bool) -> faust.App:
    app = create_faust_app(settings)
    catalog = TopicCatalog(settings.topic_prefix, settings.kafka)
    status = TopicPublisher(raw_topic(app, catalog.for_topic("notifications.status").name))
    table: TableT[bytes, dict[str, Any]] | None = (
        app.Table(STATE_TABLE, partitions=catalog.partitions, key_type=bytes) if state else None
    )

    async def publish(records: list[OutgoingRecord]) -> list[asyncio.Future[Any]]:
        await status.send_all(records)
        return []

    async def remember(changes: Iterable[Change]) -> list[asyncio.Future[Any]]:
        """Table writes, in the partition of the event that caused each: the runtime has their
        changelog records acknowledged before it commits that event's offset."""
        if table is not None:
            for event, nid, change in changes:
                key = nid.encode()
                with event_scope(event):
                    table[key] = (table.get(key) or {}) | change
        return []

    work = FloorWork(settings, publish, remember)

    async def notify_users(events: Batch) -> None:
        http, db = await resources.open()
        await work.notify(values(events), http, db)

    async def track_receipts(events: Batch) -> None:
        _, db = await resources.open()
        await work.track(values(events), db)

    size = batch_size(settings.worker)
    users = raw_topic(app, catalog.for_topic("users.events").name)
    receipts = raw_topic(app, catalog.for_topic("notifications.receipts").name)
    batch_agent(app, users, "notify_users", notify_users, size)
    batch_agent(app, receipts, "track_receipts", track_receipts, size)
    return app


def values(events: Batch) -> list[tuple[Any, bytes]]:
    return [(e, e.message.value) for e in events if e.message.value is not None]


def main() -> None:
    """Started as `python -m agents` starts the worker: uvloop, the collection schedule, the
    tables' changelogs created beforehand, the worker's ready line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state", action="store_true", help="keep the least crash-exact state")
    state = parser.parse_args().state
    settings = WorkerProcessSettings()
    loop = worker_event_loop()
    asyncio.set_event_loop(loop)
    Path(settings.worker.data_dir).mkdir(parents=True, exist_ok=True)
    resources = Resources(settings)
    app = build_app(settings, resources, state=state)
    loop.run_until_complete(ensure_topics(settings.kafka, changelog_specs(app, settings.kafka)))
    run_worker(app, settings, loop, [ResourcesService(resources)])


if __name__ == "__main__":
    main()
