"""The least a worker of the notification loop can do: `bench_notifications.py --floor-worker`.

`bench_notifications.py` runs this in place of `python -m agents`, with everything else the same
(the bench's producer, the real Kafka, the provider sandbox, the API taking the sandbox's signed
receipts, PostgreSQL), and prints the same figures. Whatever this process saves, the others'
CPU stays what the loop needs, so the total is the floor of the whole loop on this machine
with these libraries (aiokafka, aiohttp, asyncpg, fastavro); the issue's budget is judged
against it.

Per welcome notification it does only what the contracts and the bench's reading need:
- read the `user.created` record (fastavro, into a dict; no pydantic);
- one row in `notification_deliveries` (state `queued`), batched, before the send, so the
  receipt's update finds it whichever worker reads the receipt;
- the `queued`, `sending` and `sent` records on `notifications.status` (Avro, the contract);
- one send to the provider (SendGrid's API in the sandbox; `custom_args` carries the id);
- read the provider's receipt from `notifications.receipts` (written by the API), publish
  `delivered`, and set the row delivered, batched;
- commit the batch's offsets once its records are acknowledged and its rows written.

`--state` adds the least crash-exact state: each notification's entry in an in-memory table
whose changes go to a compacted changelog topic (`<app id>-floor_deliveries-changelog`), written
once when the send is accepted (the ledger that keeps a re-read event from sending twice) and
once when the receipt is applied, and acknowledged before the batch's offsets are committed.

What it leaves out, so that it is a lower bound of any worker that keeps the guarantees: every
table and changelog (the crash-exact state, the sent ledger, the routing entry), the re-keying hop
through `notifications.dispatch`, retries, preferences, templates, the timeline rows, the
statistics rollups, metrics, Faust and pydantic.

The work per batch is `FloorWork`; `faust_floor_worker.py` does the same work as agents of the
Faust runtime (`--floor-worker faust`), so the two floors differ by the runtime alone.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import signal
import time
import uuid
from collections.abc import Awaitable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, cast

import aiohttp
import asyncpg  # type: ignore[import-untyped]
import orjson
import uvloop
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from fastavro import schemaless_reader, schemaless_writer

from schemas.registry import SchemaSet
from streams.garbage_collection import schedule_collections
from streams.kafka.catalog import TopicCatalog, TopicSpec
from streams.kafka.partitioner import KeyPartitioner
from streams.kafka.topic_admin import ensure_topics
from streams.kafka.wire import HEADER_BYTES, SchemaBook
from streams.name_ids import NameIds
from streams.runtime.partition_batches import PartitionBatches, all_delivered
from streams.runtime.records import OutgoingRecord
from streams.settings import Settings, WorkerProcessSettings

READY = "tributary worker ready"
BATCH_RECORDS = 500
STATUS_RECORD = "io.tributary.events.notifications.NotificationStatusChanged"
STATE_TABLE = "floor_deliveries"
IDS = NameIds(uuid.UUID("00000000-0000-0000-0000-00000000f100"))

_QUEUE = """
INSERT INTO notification_deliveries (notification_id, user_id, channel, category, template,
    state, state_rank, state_at, attempts, caused_at, queued_at, created_at, updated_at)
SELECT n, u, 'email', 'account', 'welcome', 'queued', 0, now(), 0, c, now(), now(), now()
  FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS t(n, u, c)
ON CONFLICT (notification_id) DO NOTHING
"""
_DELIVER = """
UPDATE notification_deliveries d
   SET state = 'delivered', state_rank = 4, state_at = t.at, delivered_at = t.at, attempts = 1,
       provider = 'sendgrid', provider_message_id = t.m, updated_at = now(),
       materialized_at = now()
  FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS t(n, m, at)
 WHERE d.notification_id = t.n
RETURNING d.notification_id, d.user_id
"""


class Avro:
    """Confluent-framed Avro over the project's schemas, records as plain dicts."""

    def __init__(self) -> None:
        self._book = SchemaBook.local(SchemaSet.load())
        subject = "notifications.status-value"
        self._status = self._book.reader(subject)
        self._status_header = b"\x00" + self._book.writer_id(subject).to_bytes(4, "big")

    def read(self, raw: bytes, subject: str) -> dict[str, Any]:
        body = io.BytesIO(raw)
        body.seek(HEADER_BYTES)
        schema_id = int.from_bytes(raw[1:HEADER_BYTES], "big")
        record = schemaless_reader(
            body, self._book.writer(schema_id, subject), self._book.reader(subject)
        )
        return cast(dict[str, Any], record)

    def status(self, nid: str, user_id: str | None, state: str, **extra: Any) -> bytes:
        now_ms = int(time.time() * 1000)
        event_id = str(IDS.uuid(f"{nid}/{state}"))
        payload = {"notification_id": nid, "user_id": user_id, "state": state, "channel": "email"}
        record = {
            "event_id": event_id,
            "event_type": "notification.status-changed",
            "occurred_at": now_ms,
            "ingested_at": now_ms,
            "source": "floor",
            "correlation_id": nid,
            "causation_id": None,
            "payload": (STATUS_RECORD, payload | extra),
        }
        buffer = io.BytesIO()
        buffer.write(self._status_header)
        schemaless_writer(buffer, self._status, record)
        return buffer.getvalue()


class Publish(Protocol):
    """Queues status records; each future resolves once Kafka acknowledged its record."""

    def __call__(self, records: list[OutgoingRecord]) -> Awaitable[list[asyncio.Future[Any]]]: ...


# A change of a notification's state entry: the record that caused it, the id, the fields.
Change = tuple[Any, str, dict[str, Any]]


class Remember(Protocol):
    """Keeps state entries' changes (`--state`); futures as `Publish`'s."""

    def __call__(self, changes: Iterable[Change]) -> Awaitable[list[asyncio.Future[Any]]]: ...


class FloorWork:
    """A batch's work, the same whichever runtime consumes its records and keeps its state:
    aiokafka alone (`FloorWorker`) or the agents' Faust runtime (`faust_floor_worker.py`).
    The records come as (whatever the runtime calls a record, its value)."""

    def __init__(self, settings: WorkerProcessSettings, publish: Publish, remember: Remember):
        self._avro = Avro()
        providers = settings.providers
        self._send_url = f"{providers.sendgrid_base_url.rstrip('/')}/v3/mail/send"
        key = providers.sendgrid_api_key
        self._auth = {"Authorization": f"Bearer {key.get_secret_value() if key else ''}"}
        self._from = providers.email_from
        self._publish = publish
        self._remember = remember

    async def notify(
        self, records: Sequence[tuple[Any, bytes]], http: aiohttp.ClientSession, db: Any
    ) -> None:
        created = []
        for source, value in records:
            event = self._avro.read(value, "users.events-value")
            if event["event_type"] == "user.created":
                created.append((source, event["event_id"], event["payload"], event["occurred_at"]))
        if not created:
            return
        nids = [IDS.text(f"{event_id}/welcome") for _, event_id, _, _ in created]
        users = [payload["user_id"] for _, _, payload, _ in created]
        await db.execute(_QUEUE, nids, users, [at for _, _, _, at in created])
        queued = await self._statuses(
            [(n, self._avro.status(n, u, "queued")) for n, u in zip(nids, users, strict=True)]
        )
        sends = [
            self._send(http, n, p["email"]) for n, (_, _, p, _) in zip(nids, created, strict=True)
        ]
        message_ids = await asyncio.gather(*sends)
        statuses = []
        for nid, user, message_id in zip(nids, users, message_ids, strict=True):
            statuses.append((nid, self._avro.status(nid, user, "sending", attempt=1)))
            sent = self._avro.status(
                nid, user, "sent", attempt=1, provider="sendgrid", provider_message_id=message_id
            )
            statuses.append((nid, sent))
        entries = self._remember(
            (source, nid, {"user_id": user, "state": "sent", "provider_message_id": message_id})
            for (source, _, _, _), nid, user, message_id in zip(
                created, nids, users, message_ids, strict=True
            )
        )
        await acknowledged(queued + await self._statuses(statuses) + await entries)

    async def _send(self, http: aiohttp.ClientSession, nid: str, email: str) -> str:
        body = {
            "personalizations": [
                {"to": [{"email": email}], "custom_args": {"notification_id": nid}}
            ],
            "from": {"email": self._from},
            "subject": "Welcome",
            "content": [{"type": "text/plain", "value": "Welcome aboard"}],
        }
        async with http.post(self._send_url, json=body, headers=self._auth) as response:
            response.raise_for_status()
            return str(response.headers.get("X-Message-Id", "unknown"))

    async def track(self, records: Sequence[tuple[Any, bytes]], db: Any) -> None:
        delivered = []
        for source, value in records:
            receipt = self._avro.read(value, "notifications.receipts-value")["payload"]
            if receipt["state"] == "delivered":
                delivered.append((source, receipt, datetime.fromtimestamp(time.time(), UTC)))
        if not delivered:
            return
        nids = [r["notification_id"] for _, r, _ in delivered]
        message_ids = [r["provider_message_id"] for _, r, _ in delivered]
        # The status names the user, which the receipt need not: the row has it.
        rows = await db.fetch(_DELIVER, nids, message_ids, [at for _, _, at in delivered])
        statuses = [(row[0], self._avro.status(row[0], row[1], "delivered")) for row in rows]
        entries = self._remember(
            (source, nid, {"state": "delivered", "provider_message_id": message_id})
            for (source, _, _), nid, message_id in zip(delivered, nids, message_ids, strict=True)
        )
        await acknowledged(await self._statuses(statuses) + await entries)

    async def _statuses(self, records: list[tuple[str, bytes]]) -> list[asyncio.Future[Any]]:
        return await self._publish([OutgoingRecord(n.encode(), v) for n, v in records])


class Resources:
    """The provider session and the database pool, opened on first use in the running loop."""

    def __init__(self, settings: WorkerProcessSettings) -> None:
        self._settings = settings
        self._stack = contextlib.AsyncExitStack()
        self._opened: tuple[aiohttp.ClientSession, Any] | None = None

    async def open(self) -> tuple[aiohttp.ClientSession, Any]:
        if self._opened is None:
            dsn = self._settings.database.url.get_secret_value().replace("+asyncpg", "")
            pool_size = self._settings.dispatch.connection_pool_size
            connector = aiohttp.TCPConnector(limit=pool_size)
            http = await self._stack.enter_async_context(aiohttp.ClientSession(connector=connector))
            db = await self._stack.enter_async_context(
                asyncpg.create_pool(dsn, min_size=1, max_size=2)
            )
            self._opened = (http, db)
        return self._opened

    async def close(self) -> None:
        await self._stack.aclose()


class FloorWorker:
    def __init__(self, settings: Settings, *, state: bool) -> None:
        catalog = TopicCatalog(settings.topic_prefix, settings.kafka)
        self._users = catalog.for_topic("users.events").name
        self._receipts = catalog.for_topic("notifications.receipts").name
        self._settings = settings
        kafka = settings.kafka
        self.consumer = AIOKafkaConsumer(
            self._users,
            self._receipts,
            bootstrap_servers=kafka.bootstrap,
            group_id=settings.worker.app_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        self.producer = AIOKafkaProducer(
            bootstrap_servers=kafka.bootstrap,
            acks="all",
            enable_idempotence=True,
            linger_ms=kafka.linger_ms,
            partitioner=KeyPartitioner(),
        )
        status_topic = catalog.for_topic("notifications.status").name
        self._status = PartitionBatches(lambda: self.producer, status_topic)
        self.state_topic = (
            TopicSpec(
                name=f"{settings.worker.app_id}-{STATE_TABLE}-changelog",
                key="notification id",
                partitions=kafka.partitions,
                replication_factor=kafka.replication_factor,
                cleanup_policy="compact",
            )
            if state
            else None
        )
        self._changelog = PartitionBatches(
            lambda: self.producer, self.state_topic.name if self.state_topic else ""
        )
        self._entries: dict[str, dict[str, Any]] = {}
        self._work = FloorWork(settings, self._status.send, self._remember)

    async def run(self, stopping: asyncio.Event) -> None:
        resources = Resources(self._settings)
        try:
            http, db = await resources.open()
            if self.state_topic is not None:
                await ensure_topics(self._settings.kafka, [self.state_topic])
            await self.producer.start()
            await self.consumer.start()
            try:
                await self._loop(http, db, stopping)
            finally:
                await self.consumer.stop()
                await self.producer.stop()
        finally:
            await resources.close()

    async def _loop(
        self, http: aiohttp.ClientSession, db: asyncpg.Pool, stopping: asyncio.Event
    ) -> None:
        ready = False
        while not stopping.is_set():
            batch = await self.consumer.getmany(timeout_ms=200, max_records=BATCH_RECORDS)
            if not ready and self.consumer.assignment():
                print(READY, flush=True)
                ready = True
            users = [
                (r, r.value) for tp, rs in batch.items() if tp.topic == self._users for r in rs
            ]
            receipts = [
                (r, r.value) for tp, rs in batch.items() if tp.topic == self._receipts for r in rs
            ]
            if users or receipts:
                await asyncio.gather(
                    self._work.notify(users, http, db), self._work.track(receipts, db)
                )
                await self.consumer.commit()

    def _remember(self, changes: Iterable[Change]) -> Awaitable[list[Any]]:
        """The entries changed in the table and queued on its changelog (`--state` only)."""
        if self.state_topic is None:
            return _nothing()
        records = []
        for _, nid, change in changes:
            entry = self._entries.setdefault(nid, {}) | change
            self._entries[nid] = entry
            records.append(OutgoingRecord(nid.encode(), orjson.dumps(entry)))
        return self._changelog.send(records)


async def acknowledged(futures: list[asyncio.Future[Any]]) -> None:
    """Every send acknowledged (none, when the runtime's publisher waited for them itself)."""
    if futures:
        await all_delivered(futures)


async def _nothing() -> list[Any]:
    return []


async def run(settings: Settings, *, state: bool) -> None:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await FloorWorker(settings, state=state).run(stopping)


def main() -> None:
    """On uvloop, with the worker's collection schedule, as `python -m agents` runs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state", action="store_true", help="keep the least crash-exact state")
    state = parser.parse_args().state
    settings = Settings()
    schedule_collections(settings.gc_young_objects)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(run(settings, state=state))


if __name__ == "__main__":
    main()
