"""One batch of `auth.events` records -> the `sessions` table, PostgreSQL rows, alerts.

Runs in the `detect_suspicious_logins` agent, after the security rules, on the same batch (see
`agents.security.pipeline`): the table is co-partitioned with `auth.events` by user id, and the
new-device alert keeps its place among the security agent's alerts. Per batch: one PostgreSQL
transaction (`SessionStore.write`) and one send of alerts, never one per event.

The worker hands it the records the security rules decoded (`process_decoded`: each record is
decoded once per agent); a replay, which runs it alone, hands it bytes (`process`). Records that
do not decode are skipped here: the security rules of the same agent dead-letter them, and a
second dead letter of the same record would only be a copy.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from agents.retry import Backoff, Sleep, retry_retriable
from agents.security.batch import Decoded, decode_batch
from agents.sessions.state import Applied, UserSessions, apply, carried_over
from schemas.auth import AuthEvent
from schemas.sessions import DeviceView, SessionView
from streams.errors import RetriableError
from streams.runtime import OutgoingRecord, RecordSink, SourceRecord

log = logging.getLogger(__name__)

E = TypeVar("E")
SessionsTable = MutableMapping[bytes, dict[str, Any]]
Decode = Callable[[bytes | None], AuthEvent]
Encode = Callable[[AuthEvent], bytes]


class SessionSink(Protocol):
    async def write(
        self, sessions: Sequence[SessionView], devices: Sequence[DeviceView]
    ) -> int: ...


@dataclass(slots=True)
class SessionStats:
    batches: int = 0
    events: int = 0
    undecodable: int = 0
    rows_written: int = 0
    alerts: int = 0
    retries: int = 0


def latest_rows(applied: Sequence[Applied]) -> tuple[list[SessionView], list[DeviceView]]:
    """One row per session and per device, the latest of the batch (PostgreSQL refuses to
    upsert a key twice in one statement)."""
    sessions: dict[tuple[str, str], SessionView] = {}
    devices: dict[tuple[str, str], DeviceView] = {}
    for item in applied:
        for session in item.sessions:
            sessions[(session.user_id, session.session_id)] = session
        for device in item.devices:
            devices[(device.user_id, device.device_id)] = device
    return list(sessions.values()), list(devices.values())


class SessionTracker(Generic[E]):
    def __init__(
        self,
        *,
        table: SessionsTable,
        decode: Decode,
        encode: Encode,
        rows: SessionSink,
        alerts: RecordSink,
        describe: Callable[[E], SourceRecord],
        scope: Callable[[E], AbstractContextManager[None]],
        max_devices: int,
        backoff: Backoff,
        sleep: Sleep = asyncio.sleep,
        carried_from: Mapping[bytes, Mapping[str, Any]] | None = None,
    ) -> None:
        """`carried_from`: the old security rule's entries by user (`security-users`), read for
        a user who has no entry in `table` yet (see `agents.sessions.state.carried_over`)."""
        self._table = table
        self._carried_from = carried_from
        self._decode = decode
        self._encode = encode
        self._rows = rows
        self._alerts = alerts
        self._describe = describe
        self._scope = scope
        self._max_devices = max_devices
        self._backoff = backoff
        self._sleep = sleep
        self.stats = SessionStats()

    async def process(self, batch: Sequence[E]) -> None:
        await self.process_decoded(decode_batch(batch, self._describe, self._decode))

    async def process_decoded(self, batch: Sequence[Decoded[E]]) -> None:
        applied: list[Applied] = []
        # Each user's entry is parsed once per batch and written once, after its last event, in
        # that event's scope (the changelog partition of the key's own events).
        states: dict[bytes, UserSessions] = {}
        dirty: dict[bytes, E] = {}
        for decoded in batch:
            item, event = decoded.item, decoded.event
            if event is None:
                self.stats.undecodable += 1
                continue
            user_id = getattr(event.payload, "user_id", None)
            if user_id is None:
                continue
            key = user_id.encode()
            state = states.get(key)
            if state is None:
                with self._scope(item):  # a table read looks in the record's partition alone
                    state = states[key] = self._state_of(user_id, key)
            result = apply(state, event, self._max_devices)
            # Written when the event was applied, even if it changed no row: its id is kept.
            if result.changed or (state.recent and state.recent[-1][0] == str(event.event_id)):
                dirty[key] = item
            applied.append(result)
        for key, item in dirty.items():
            with self._scope(item):
                self._table[key] = states[key].to_entry()
        sessions, devices = latest_rows(applied)
        if sessions or devices:
            self.stats.rows_written += await self._retry(
                lambda: self._rows.write(sessions, devices), "session rows"
            )
        alerts = [
            OutgoingRecord(key=alert.payload.user_id.encode(), value=self._encode(alert))
            for item in applied
            for alert in item.alerts
        ]
        if alerts:
            await self._retry(lambda: self._alerts.send_all(alerts), "session alerts")
            self.stats.alerts += len(alerts)
        self.stats.batches += 1
        self.stats.events += len(batch)

    def _state_of(self, user_id: str, key: bytes) -> UserSessions:
        entry = self._table.get(key)
        if entry is None and self._carried_from is not None:
            return carried_over(user_id, self._carried_from.get(key), self._max_devices)
        return UserSessions.from_entry(user_id, entry)

    async def _retry(self, operation: Callable[[], Any], what: str) -> Any:
        return await retry_retriable(
            operation,
            backoff=self._backoff,
            what=f"writing {what}",
            sleep=self._sleep,
            on_retry=self._count_retry,
        )

    def _count_retry(self, error: RetriableError, delay_s: float) -> None:
        self.stats.retries += 1
