"""Delivery tracking without Kafka: CPU per notification of track_deliveries' batch logic.

Runs `DeliveryTracker` (decode, fold, outbox, rows) over in-memory tables and sinks on the
records one email makes as the loop writes them (queued, sending, sent from the router and the
dispatcher, then the provider's delivered receipt, in batches of `BATCH` records), so the figure
is the tracker's own CPU per notification, without Faust's table and consumer costs.
Usage: `python scripts/bench_tracking.py [notifications] [rounds]`; `--profile` prints cProfile's
top functions instead; `--bounced` makes every receipt a hard bounce, so that each notification
also costs the tracker a suppression report (the worst case: most receipts say delivered);
`--floor` first times the same feed through `tracking_floor.py` (the stage's essential work
on plain values, no models: its lower bound); `--early` makes every receipt overtake its
`sent` (read in the batch of its `queued`, its `sending` and `sent` in the next), so each is
held, then released. It also prints the table
writes (sets and deletes, each a changelog record in the worker) per notification, of
`deliveries` and `held_receipts`.

It collects garbage on the worker's schedule (`streams.garbage_collection`, the setting's
default): on CPython's own, full collections over the feed took ~40 % of the tracker's figure,
a cost the worker does not pay.
"""

from __future__ import annotations

import asyncio
import cProfile
import pstats
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from tracking_floor import TrackingFloor

from agents.retry import Backoff
from agents.tracking.tracker import DeliveryTracker, Topics
from schemas.notifications import NotificationReceiptEvent, NotificationStatusEvent
from streams.garbage_collection import schedule_collections
from streams.kafka.wire import decode, encode
from streams.runtime import OutgoingRecord, SourceRecord
from streams.settings.processes import ProcessSettings
from streams.stores.delivery_store import (
    DeliveryValues,
    TransitionValues,
    delivery_columns,
    transition_columns,
)

BATCH = 500
TOPICS = Topics(status="bench-notifications.status", receipts="bench-notifications.receipts")


class NullSink:
    async def send_all(self, records: Sequence[OutgoingRecord]) -> None:
        return None


class NullStore:
    """Turns the rows into the statements' parameters, as the PostgreSQL store does before
    sending them (its own functions), and sends nothing."""

    async def write(
        self, deliveries: Sequence[DeliveryValues], transitions: Sequence[TransitionValues]
    ) -> int:
        if deliveries:
            delivery_columns(deliveries)
        if transitions:
            transition_columns(transitions)
        return len(deliveries) + len(transitions)


class CountingTable(dict[bytes, dict[str, Any]]):
    """An in-memory table that counts its writes: each is a changelog record in the worker."""

    writes = 0

    def __setitem__(self, key: bytes, value: dict[str, Any]) -> None:
        self.writes += 1
        super().__setitem__(key, value)

    def __delitem__(self, key: bytes) -> None:
        self.writes += 1
        super().__delitem__(key)


@contextmanager
def no_scope(_item: SourceRecord) -> Iterator[None]:
    yield


def _status(nid: str, state: str, at: datetime, attempt: int | None) -> bytes:
    event_id = uuid.uuid4()
    payload: dict[str, Any] = {
        "notification_id": nid,
        "user_id": f"user-{nid}",
        "state": state,
        "channel": "email",
        "category": "account",
        "template": "welcome",
        "caused_at": at - timedelta(seconds=1),
        "attempt": attempt,
    }
    if state == "sent":
        payload |= {"provider": "sendgrid", "provider_message_id": f"msg-{nid}"}
    event = NotificationStatusEvent.model_validate(
        {
            "event_id": event_id,
            "event_type": "notification.status-changed",
            "occurred_at": at,
            "ingested_at": at,
            "source": "bench",
            "correlation_id": str(event_id),
            "payload": payload,
        }
    )
    return encode(event)


def _receipt(nid: str, at: datetime, state: str) -> bytes:
    event = NotificationReceiptEvent.model_validate(
        {
            "event_id": uuid.uuid4(),
            "event_type": "notification.receipt-received",
            "occurred_at": at,
            "ingested_at": at,
            "source": "provider:sendgrid",
            "correlation_id": nid,
            "payload": {
                "notification_id": nid,
                "provider": "sendgrid",
                "provider_message_id": f"msg-{nid}",
                "state": state,
                "channel": "email",
                "reason": "550 5.1.1 mailbox does not exist" if state == "bounced" else None,
            },
        }
    )
    return encode(event)


def _record(topic: str, value: bytes) -> SourceRecord:
    return SourceRecord(topic, 0, 0, b"", value)


def records(
    notifications: int, run: str, receipt: str = "delivered", early: bool = False
) -> list[SourceRecord]:
    """Each notification's statuses then its receipt, in the order the tracker meets them:
    a window of notifications is queued and sending, then sent, then delivered (`early`:
    queued, then the receipt, in one batch; sending and sent in the next)."""
    t0 = datetime.now(UTC)
    out: list[SourceRecord] = []
    window = BATCH // 2
    for start in range(0, notifications, window):
        ids = [f"{run}-{n}" for n in range(start, min(start + window, notifications))]
        at = t0 + timedelta(seconds=start)
        steps = (("queued", 0, None), ("sending", 100, 1), ("sent", 200, 1))
        statuses = [
            [
                _record(TOPICS.status, _status(i, state, at + timedelta(milliseconds=ms), n))
                for i in ids
            ]
            for state, ms, n in steps
        ]
        done = at + timedelta(milliseconds=600)
        receipts = [_record(TOPICS.receipts, _receipt(i, done, receipt)) for i in ids]
        queued, sending, sent = statuses
        out += (
            [*queued, *receipts, *sending, *sent]
            if early
            else [*queued, *sending, *sent, *receipts]
        )
    return out


def tracker(table: CountingTable, held: CountingTable) -> DeliveryTracker[SourceRecord]:
    return DeliveryTracker(
        table=table,
        topics=TOPICS,
        decode_status=lambda raw: decode(raw, NotificationStatusEvent),
        decode_receipt=lambda raw: decode(raw, NotificationReceiptEvent),
        encode=encode,
        store=NullStore(),
        status_out=NullSink(),
        reports_out=NullSink(),
        dead_letters={TOPICS.status: NullSink(), TOPICS.receipts: NullSink()},
        describe=lambda record: record,
        scope=no_scope,
        backoff=Backoff(),
        held=held,
    )


# Table writes per notification in the last run: deliveries, held_receipts.
WRITES: list[tuple[float, float]] = []


async def run_once(
    notifications: int, run: str, receipt: str = "delivered", early: bool = False
) -> float:
    feed = records(notifications, run, receipt, early)
    table, held = CountingTable(), CountingTable()
    tracking = tracker(table, held)
    started = time.process_time()
    for start in range(0, len(feed), BATCH):
        await tracking.process(feed[start : start + BATCH])
    spent = time.process_time() - started
    assert tracking.stats.published == notifications, tracking.stats
    assert tracking.stats.reports == (notifications if receipt == "bounced" else 0), tracking.stats
    assert tracking.stats.receipts_held == (notifications if early else 0), tracking.stats
    WRITES[:] = [(table.writes / notifications, held.writes / notifications)]
    return spent


def floor_once(
    notifications: int, run: str, receipt: str = "delivered", early: bool = False
) -> float:
    """The same feed through `TrackingFloor`: what the stage's work costs on plain values."""
    feed = records(notifications, run, receipt, early)
    floor = TrackingFloor(TOPICS.status, TOPICS.receipts)
    published = 0
    started = time.process_time()
    for start in range(0, len(feed), BATCH):
        published += len(floor.process(feed[start : start + BATCH])[1])
    spent = time.process_time() - started
    assert published == notifications, published
    return spent


def main() -> int:
    schedule_collections(ProcessSettings.model_fields["gc_young_objects"].default)
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    notifications = int(args[0]) if args else 10_000
    rounds = int(args[1]) if len(args) > 1 else 5
    receipt = "bounced" if "--bounced" in sys.argv else "delivered"
    early = "--early" in sys.argv
    if "--profile" in sys.argv:
        profile = cProfile.Profile()
        profile.enable()
        asyncio.run(run_once(notifications, "profile", receipt, early))
        profile.disable()
        pstats.Stats(profile).sort_stats("tottime").print_stats(25)
        return 0
    if "--floor" in sys.argv:
        floor = [floor_once(notifications, f"f{n}", receipt, early) for n in range(rounds)]
        print(
            f"tracking floor (tracking_floor.py, plain values): best of {rounds}:"
            f" {1e6 * min(floor) / notifications:.1f} µs CPU per notification"
            f" (median {1e6 * sorted(floor)[len(floor) // 2] / notifications:.1f})"
        )
    spent = [asyncio.run(run_once(notifications, f"r{n}", receipt, early)) for n in range(rounds)]
    best = min(spent)
    order = ", each before its sent" if early else ""
    print(
        f"track_deliveries: {notifications} notifications (3 statuses + 1 {receipt} receipt"
        f" each{order}),"
        f" best of {rounds}: {1e6 * best / notifications:.1f} µs CPU per notification"
        f" (median {1e6 * sorted(spent)[len(spent) // 2] / notifications:.1f})"
    )
    [(deliveries, held)] = WRITES
    print(
        f"table writes per notification: deliveries {deliveries:.2f},"
        f" held_receipts {held:.2f} (sets and deletes: changelog records)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
