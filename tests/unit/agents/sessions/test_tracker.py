"""One batch through the sessions tracker, with a dict for the table and fakes for the sinks."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from agents.retry import Backoff
from agents.security.batch import then_decoded
from agents.sessions.tracker import Decode, SessionTracker
from schemas.auth import AuthEvent
from schemas.sessions import DeviceView, SessionView
from streams.errors import ServiceUnavailableError
from streams.kafka.wire import decode, encode
from streams.runtime import SourceRecord
from tests.unit.agents.batch_fakes import ScopeAndSleep
from tests.unit.agents.security.test_batch import Harness as SecurityHarness
from tests.unit.agents.security.test_batch import decode_auth
from tests.unit.agents.security.test_signals import failed
from tests.unit.agents.sessions.test_state import event, login
from tests.unit.fakes import FakeSink


class FakeRows:
    def __init__(self, failures: int = 0) -> None:
        self.calls: list[tuple[list[SessionView], list[DeviceView]]] = []
        self.failures = failures

    async def write(self, sessions: Sequence[SessionView], devices: Sequence[DeviceView]) -> int:
        if self.failures:
            self.failures -= 1
            raise ServiceUnavailableError("postgresql", "connection refused")
        self.calls.append((list(sessions), list(devices)))
        return len(sessions) + len(devices)


class Harness(ScopeAndSleep):
    def __init__(
        self,
        rows: FakeRows | None = None,
        decode: Decode = decode_auth,
        carried_from: dict[bytes, dict[str, Any]] | None = None,
    ) -> None:
        super().__init__()
        self.table: dict[bytes, dict[str, Any]] = {}
        self.rows = rows or FakeRows()
        self.alerts = FakeSink()
        self.tracker: SessionTracker[SourceRecord] = SessionTracker(
            table=self.table,
            decode=decode,
            encode=encode,
            rows=self.rows,
            alerts=self.alerts,
            describe=lambda record: record,
            scope=self.scope,
            max_devices=10,
            backoff=Backoff(initial_s=0.5, max_s=2.0),
            sleep=self.sleep,
            carried_from=carried_from,
        )


def records(*values: bytes) -> list[SourceRecord]:
    return [
        SourceRecord(topic="t-auth.events", partition=0, offset=n, key=b"u1", value=value)
        for n, value in enumerate(values)
    ]


async def test_a_batch_writes_one_row_per_session_and_device_in_one_call() -> None:
    harness = Harness()
    batch = [
        login("s1", device_id="laptop"),
        login("s1", 5, device_id="laptop"),
        login("s2", 6, device_id="phone"),
        event("auth.logout", 7, session_id="s1"),
    ]
    await harness.tracker.process(records(b"\xffnot avro", *(encode(e) for e in batch)))
    [(sessions, devices)] = harness.rows.calls
    by_id = {s.session_id: s for s in sessions}
    assert set(by_id) == {"s1", "s2"}
    assert by_id["s1"].end_reason == "logout"
    assert by_id["s1"].logins == 2
    assert {d.device_id: d.login_count for d in devices} == {"laptop": 2, "phone": 1}
    assert list(harness.table) == [b"u1"]
    # The entry is read once, in the scope of the user's first event of the batch (its
    # partition's store alone), and written once, in the scope of the last.
    assert harness.scoped == [1, 4]
    (alert,) = harness.alerts.sent
    assert alert.key == b"u1"
    assert decode(alert.value, AuthEvent).payload.device_id == "phone"  # type: ignore[union-attr]
    stats = harness.tracker.stats
    assert (stats.events, stats.undecodable, stats.alerts) == (5, 1, 1)


async def test_a_replayed_batch_changes_nothing_and_repeats_its_alerts() -> None:
    harness = Harness()
    batch = records(*(encode(login(f"s{n}", n, device_id=f"d{n}")) for n in range(3)))
    await harness.tracker.process(batch)
    entry = harness.table[b"u1"]
    await harness.tracker.process(batch)
    assert harness.table[b"u1"] == entry
    first, second = harness.rows.calls
    assert first == second
    assert [a.value for a in harness.alerts.sent[:2]] == [a.value for a in harness.alerts.sent[2:]]


async def test_an_unavailable_database_is_retried_before_alerts_are_sent() -> None:
    harness = Harness(FakeRows(failures=2))
    await harness.tracker.process(records(encode(login("s1"))))
    assert harness.sleeps == [0.5, 1.0]
    assert len(harness.rows.calls) == 1
    assert harness.tracker.stats.retries == 2


async def test_after_the_security_rules_each_record_is_decoded_once_for_both() -> None:
    """The agent's order: the rules (dead-lettering what does not decode), then the sessions
    fold, on the records the rules decoded."""
    decoded: list[bytes | None] = []

    def counting_decode(raw: bytes | None) -> AuthEvent:
        decoded.append(raw)
        return decode(raw, AuthEvent)

    sessions = Harness(decode=counting_decode)
    rules = SecurityHarness(decode=counting_decode)
    batch = records(b"\xffnot avro", encode(login("s1", device_id="laptop")), encode(failed()))
    await then_decoded(rules.processor, sessions.tracker.process_decoded)(batch)

    assert decoded == [record.value for record in batch]
    assert len(rules.dead_letters.sent) == 1
    assert rules.processor.stats.events == 3
    [(rows, devices)] = sessions.rows.calls
    assert [s.session_id for s in rows] == ["s1"]
    assert [d.device_id for d in devices] == ["laptop"]
    assert (sessions.tracker.stats.events, sessions.tracker.stats.undecodable) == (3, 1)


async def test_a_user_new_to_the_table_starts_from_the_old_rules_devices_once() -> None:
    legacy = {b"u1": {"devices": [["laptop", str(uuid.uuid4()), False]]}}
    harness = Harness(carried_from=legacy)
    await harness.tracker.process(records(encode(login("s1", device_id="tablet"))))
    (alert,) = harness.alerts.sent
    assert decode(alert.value, AuthEvent).payload.device_id == "tablet"  # type: ignore[union-attr]
    assert harness.table[b"u1"]["carried"] == ["laptop"]
    # Once the user has an entry, the old one is not read again.
    legacy[b"u1"] = {"devices": [["watch", str(uuid.uuid4()), False]]}
    await harness.tracker.process(records(encode(login("s2", 1, device_id="watch"))))
    assert len(harness.alerts.sent) == 2
    await harness.tracker.process(records(encode(login("s3", 2, device_id="laptop"))))
    assert len(harness.alerts.sent) == 2
    assert "carried" not in harness.table[b"u1"]


async def test_without_old_devices_the_first_device_is_learned_quietly() -> None:
    harness = Harness(carried_from={b"u2": {"devices": [["laptop", "id", False]]}})
    await harness.tracker.process(records(encode(login("s1", device_id="tablet"))))
    assert harness.alerts.sent == []
