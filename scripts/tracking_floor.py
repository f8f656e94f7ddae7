"""The tracker's floor: its essential work per record on plain values, `bench_tracking.py --floor`.

What `track_deliveries` must do for every status and receipt of the common path, done with no
model objects: the record read by the compiled Avro reader into a dict (`SchemaBook.read`, which
checks it against the schema), the step as a tuple, the fold (same step seen, the facts, the
timeline, the current state by the tracker's precedence, attempts, provider), each changed
entry's JSON by orjson once per batch, the rows as tuples, and for a receipt the `delivered`
transition written by the compiled Avro writer. It leaves out what the common path only
checks for (held receipts, the outbox, suppression reports, dead letters, the metrics'
transitions), so it is a lower bound of the stage, as `floor_worker.py` is of the loop: the
distance between `bench_tracking.py`'s two figures is what the tracker's objects and layers
cost, not what tracking needs.

Not a tracker: nothing in the pipeline uses it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson

from agents.tracking.state import RECEIPT_STATE, SAME_TIME_ORDER, STATE_RANK
from schemas.registry import SchemaSet
from streams.kafka.wire import HEADER_BYTES, SchemaBook
from streams.name_ids import NameIds
from streams.runtime import SourceRecord

STATUS = "notifications.status-value"
RECEIPTS = "notifications.receipts-value"
STATUS_RECORD = "io.tributary.events.notifications.NotificationStatusChanged"
IDS = NameIds(uuid.UUID("00000000-0000-0000-0000-00000000f101"))
_ATTEMPTED = frozenset({"sending", "retrying", "sent", "delivered", "failed", "bounced", "spam"})
_FACTS = ("user_id", "channel", "category", "template", "caused_at")

# state, occurred_at, event_id, reason, attempt, provider, provider_message_id
Step = tuple[str, datetime, Any, str | None, int | None, str | None, str | None]


def _version(step: Step) -> tuple[int, datetime, int, str, Any]:
    return (STATE_RANK[step[0]], step[1], SAME_TIME_ORDER.get(step[0], 1), step[0], step[2])


class TrackingFloor:
    """Folds batches of status and receipt records into plain entries (`entries`, by id)."""

    def __init__(self, status_topic: str, receipts_topic: str) -> None:
        self._book = SchemaBook.local(SchemaSet.load())
        self._subjects = {status_topic: STATUS, receipts_topic: RECEIPTS}
        self._receipts = receipts_topic
        self._status_header = b"\x00" + self._book.writer_id(STATUS).to_bytes(4, "big")
        self.entries: dict[str, dict[str, Any]] = {}
        self.table: dict[bytes, bytes] = {}

    def process(self, batch: Sequence[SourceRecord]) -> tuple[list[tuple[Any, ...]], list[bytes]]:
        """The batch's rows (deliveries, then transitions) and its published transitions."""
        changed: dict[str, dict[str, Any]] = {}
        transitions: list[tuple[Any, ...]] = []
        published: list[bytes] = []
        for record in batch:
            value = record.value or b""
            subject = self._subjects[record.topic]
            writer = self._book.writer(int.from_bytes(value[1:HEADER_BYTES], "big"), subject)
            event, _ = self._book.read(value, HEADER_BYTES, writer, subject)
            payload = event["payload"]
            payload = payload[1] if isinstance(payload, tuple) else payload
            receipt = record.topic == self._receipts
            state = RECEIPT_STATE[payload["state"]] if receipt else payload["state"]
            if state is None:
                continue
            step: Step = (
                state,
                event["occurred_at"],
                event["event_id"],
                payload.get("reason"),
                payload.get("attempt"),
                payload.get("provider"),
                payload.get("provider_message_id"),
            )
            nid = payload["notification_id"]
            entry = self._fold(nid, step, payload)
            if entry is None:
                continue
            changed[nid] = entry
            transitions.append((nid, *step))
            if receipt:
                published.append(self._transition(nid, step, entry))
        for nid, entry in changed.items():
            self.table[nid.encode()] = orjson.dumps(entry)
        return [_row(entry) for entry in changed.values()] + transitions, published

    def _fold(self, nid: str, step: Step, payload: dict[str, Any]) -> dict[str, Any] | None:
        entry = self.entries.get(nid)
        if entry is None:
            entry = self.entries[nid] = {"notification_id": nid, "current": None, "attempts": 0}
            entry |= dict.fromkeys(_FACTS) | {"provider_step": None, "timeline": []}
        timeline: list[Step] = entry["timeline"]
        if any(s[0] == step[0] and s[1] == step[1] for s in timeline):
            return None
        for fact in _FACTS:
            if entry[fact] is None and payload.get(fact) is not None:
                entry[fact] = payload[fact]
        timeline.append(step)
        timeline.sort(key=lambda s: (s[1], s[0]))
        if entry["current"] is None or _version(step) > _version(entry["current"]):
            entry["current"] = step
        entry["attempts"] = max(entry["attempts"], step[4] or int(step[0] in _ATTEMPTED))
        if step[5] is not None:
            entry["provider_step"] = step
        return entry

    def _transition(self, nid: str, step: Step, entry: dict[str, Any]) -> bytes:
        payload = {
            "notification_id": nid,
            "user_id": entry["user_id"],
            "state": step[0],
            "channel": entry["channel"],
            "provider": step[5],
            "provider_message_id": step[6],
        }
        event = {
            "event_id": str(IDS.uuid(f"{nid}/{step[2]}")),
            "event_type": "notification.status-changed",
            "occurred_at": step[1],
            "ingested_at": int(time.time() * 1000),
            "source": "tracker",
            "correlation_id": nid,
            "causation_id": str(step[2]),
            "payload": (STATUS_RECORD, payload),
        }
        return self._status_header + self._book.write(STATUS, event)


def _row(entry: dict[str, Any]) -> tuple[Any, ...]:
    current: Step = entry["current"]
    timeline: list[Step] = entry["timeline"]
    first = {}
    for step in reversed(timeline):
        first[step[0]] = step[1]
    return (
        entry["notification_id"],
        *(entry[fact] for fact in _FACTS),
        current[0],
        STATE_RANK[current[0]],
        current[1],
        entry["attempts"],
        first.get("queued"),
        first.get("delivered"),
        timeline[0][1],
        timeline[-1][1],
    )
