"""Properties of the two security agents together: batching and replays change no decision.

The per-user processor reads `auth.events` and forwards each failure re-keyed by IP to the per-IP
processor. Whatever the batch cuts of either stream, the tables, alerts, blocks and forwards are
those of one big batch; and reading a suffix of `auth.events` again (a crash after the table
was written, before the offsets were committed) leaves both tables as they were and sends only
alerts and blocks already sent, under the same ids.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from agents.retry import Backoff
from agents.security.batch import SecurityProcessor, ip_key, user_key
from agents.security.signals import on_ip_failure, on_user_event
from schemas.auth import AuthEvent
from streams.kafka.wire import decode, encode
from streams.runtime import OutgoingRecord, SourceRecord
from streams.stores.block_store import Block
from tests.unit.agents.batch_fakes import ScopeAndSleep
from tests.unit.agents.security.test_signals_properties import CONFIG, auth_events
from tests.unit.fakes import FakeSink


class FakeBlocks:
    def __init__(self) -> None:
        self.written: list[Block] = []

    async def write(self, blocks: Sequence[Block]) -> int:
        self.written.extend(blocks)
        return len(blocks)


class Agents(ScopeAndSleep):
    """Both processors, their tables and what they sent."""

    def __init__(self) -> None:
        super().__init__()
        self.user_table: dict[bytes, dict[str, Any]] = {}
        self.ip_table: dict[bytes, dict[str, Any]] = {}
        self.alerts = FakeSink()
        self.forward = FakeSink()
        self.blocks = FakeBlocks()
        self.by_user = self._processor(self.user_table, per_ip=False)
        self.by_ip = self._processor(self.ip_table, per_ip=True)
        self._ip_offset = 0

    def _processor(
        self, table: dict[bytes, dict[str, Any]], *, per_ip: bool
    ) -> SecurityProcessor[SourceRecord]:
        return SecurityProcessor(
            table=table,
            key_of=ip_key if per_ip else user_key,
            handle=on_ip_failure if per_ip else on_user_event,
            config=CONFIG,
            decode=lambda raw: decode(raw, AuthEvent),
            encode=encode,
            alerts=self.alerts,
            blocks=self.blocks,
            dead_letters=FakeSink(),
            describe=lambda record: record,
            scope=self.scope,
            forward=None if per_ip else self.forward,
            backoff=Backoff(initial_s=0.5, max_s=2.0),
            sleep=self.sleep,
        )

    def run(self, user_batches: list[list[SourceRecord]], ip_cuts: set[int]) -> None:
        """The user batches, then what they forwarded (from where the IP agent had got to)."""

        async def go() -> None:
            for batch in user_batches:
                await self.by_user.process(batch)
            forwarded = self.forward.sent[self._ip_offset :]
            self._ip_offset = len(self.forward.sent)
            ip_records = [
                SourceRecord("t-auth.failures-by-ip", 0, n, r.key, r.value)
                for n, r in enumerate(forwarded)
            ]
            for batch in cut(ip_records, ip_cuts):
                await self.by_ip.process(batch)

        asyncio.run(go())

    def alert_ids(self, sent: list[OutgoingRecord]) -> list[str]:
        return [str(decode(r.value, AuthEvent).event_id) for r in sent]


def cut(records: list[SourceRecord], cuts: set[int]) -> list[list[SourceRecord]]:
    bounds = [0, *sorted(c for c in cuts if 0 < c < len(records)), len(records)]
    return [records[a:b] for a, b in itertools.pairwise(bounds) if b > a]


def as_records(events: list[AuthEvent]) -> list[SourceRecord]:
    return [
        SourceRecord("t-auth.events", 0, n, event.payload.user_id.encode(), encode(event))
        for n, event in enumerate(events)
    ]


histories = st.lists(auth_events, min_size=1, max_size=12)
cuts = st.sets(st.integers(1, 24), max_size=5)


@settings(max_examples=50)
@given(events=histories, user_cuts=cuts, ip_cuts=cuts)
def test_any_batching_makes_the_same_decisions(
    events: list[AuthEvent], user_cuts: set[int], ip_cuts: set[int]
) -> None:
    records = as_records(events)
    one = Agents()
    one.run([records], set())
    many = Agents()
    many.run(cut(records, user_cuts), ip_cuts)
    assert many.user_table == one.user_table
    assert many.ip_table == one.ip_table
    assert [r.value for r in many.forward.sent] == [r.value for r in one.forward.sent]
    # Alerts of one agent keep their order; the two agents' alerts interleave by batch.
    assert sorted(many.alert_ids(many.alerts.sent)) == sorted(one.alert_ids(one.alerts.sent))
    assert sorted(many.blocks.written, key=repr) == sorted(one.blocks.written, key=repr)


@settings(max_examples=50)
@given(data=st.data(), events=histories, user_cuts=cuts)
def test_reading_a_suffix_again_sends_nothing_new(
    data: st.DataObject, events: list[AuthEvent], user_cuts: set[int]
) -> None:
    records = as_records(events)
    batches = cut(records, user_cuts)
    agents = Agents()
    agents.run(batches, set())
    tables = (dict(agents.user_table), dict(agents.ip_table))
    first_alerts = set(agents.alert_ids(agents.alerts.sent))
    first_blocks = {block.event_id for block in agents.blocks.written}
    sent = len(agents.alerts.sent)
    starts = [sum(len(b) for b in batches[:i]) for i in range(len(batches))]
    resumed = data.draw(st.sampled_from(starts))
    agents.run(cut(records[resumed:], data.draw(cuts)), data.draw(cuts))
    assert (agents.user_table, agents.ip_table) == tables
    assert set(agents.alert_ids(agents.alerts.sent[sent:])) <= first_alerts
    assert {block.event_id for block in agents.blocks.written} == first_blocks
