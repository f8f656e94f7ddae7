"""What the dispatch integration tests share: dispatch events, a tap on a topic, the sandbox."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer

from schemas.notifications import NotificationDispatchEvent, NotificationStatusChanged
from schemas.notifications import NotificationStatusEvent as StatusEvent
from streams.kafka.wire import decode, encode
from streams.settings import Settings


def new_notification_id() -> str:
    return f"ntf-{uuid.uuid4().hex}"


def dispatch_value(notification_id: str, channel: str, recipient: str) -> bytes:
    now = datetime.now(UTC)
    event = NotificationDispatchEvent.model_validate(
        {
            "event_id": uuid.uuid4(),
            "event_type": "notification.dispatch-requested",
            "occurred_at": now,
            "ingested_at": now,
            "source": "test",
            "correlation_id": notification_id,
            "payload": {
                "notification_id": notification_id,
                "user_id": "user-1",
                "category": "account",
                "channel": channel,
                "recipient": recipient,
                "locale": "en",
                "subject": "Welcome" if channel in ("email", "push") else None,
                "body": "Hello from the dispatch test",
                "template": "welcome",
                "rule": "welcome",
                "attempt": 1,
                "caused_at": now,
                "critical": False,
            },
        }
    )
    return encode(event)


@dataclass(frozen=True, slots=True)
class TappedRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]

    def header(self, name: str) -> str | None:
        return next((v.decode() for k, v in self.headers if k == name), None)


class TopicTap:
    """Reads a topic from its beginning in the background and keeps every record."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self.topic = topic
        self.records: list[TappedRecord] = []
        # Subscribed in no group: aiokafka assigns every partition once the topic is known.
        self._consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=settings.kafka.bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            group_id=None,
        )
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._consumer.start()
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=200)
            for messages in batches.values():
                for m in messages:
                    headers = tuple((k, bytes(v)) for k, v in (m.headers or ()))
                    self.records.append(
                        TappedRecord(m.topic, m.partition, m.offset, m.key, m.value, headers)
                    )

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._consumer.stop()

    def keyed(self, key: str) -> list[TappedRecord]:
        return [record for record in self.records if record.key == key.encode()]


@contextlib.asynccontextmanager
async def tapped(settings: Settings, topic: str) -> AsyncIterator[TopicTap]:
    tap = TopicTap(settings, topic)
    await tap.start()
    try:
        yield tap
    finally:
        await tap.stop()


def statuses(tap: TopicTap, notification_id: str) -> list[NotificationStatusChanged]:
    return [decode(r.value, StatusEvent).payload for r in tap.keyed(notification_id)]


def states(tap: TopicTap, notification_id: str) -> list[tuple[str, int | None]]:
    return [(s.state, s.attempt) for s in statuses(tap, notification_id)]


def when(condition: Callable[[], bool]) -> Callable[[], Any]:
    """A probe for `eventually`: True once `condition` holds, else None."""

    async def probe() -> bool | None:
        return True if condition() else None

    return probe


async def sandbox_messages(sandbox_url: str, notification_id: str) -> list[dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{sandbox_url}/_sandbox/messages", params={"notification_id": notification_id}
        ) as answer,
    ):
        body = await answer.json()
        messages: list[dict[str, Any]] = body["messages"]
        return messages


async def set_outage(sandbox_url: str, provider: str, down: bool) -> None:
    async with aiohttp.ClientSession() as http:
        method = http.post if down else http.delete
        async with method(f"{sandbox_url}/_sandbox/outage/{provider}") as answer:
            assert answer.status == 200, await answer.text()
