"""One batch through the security processor, with a dict for the table and fakes for the sinks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agents.retry import Backoff
from agents.security.batch import Decode, SecurityProcessor, ip_key, user_key
from agents.security.signals import on_ip_failure, on_user_event
from schemas.auth import AuthEvent, SuspiciousLogin
from streams.kafka.wire import decode, encode
from streams.runtime import SourceRecord
from streams.stores.block_store import Block
from tests.unit.agents.batch_fakes import ScopeAndSleep
from tests.unit.agents.security.test_signals import CONFIG, failed
from tests.unit.fakes import FakeSink

TOPIC = "t-auth.events"


def decode_auth(raw: bytes | None) -> AuthEvent:
    return decode(raw, AuthEvent)


class FakeBlocks:
    def __init__(self) -> None:
        self.calls: list[list[Block]] = []

    async def write(self, blocks: Sequence[Block]) -> int:
        self.calls.append(list(blocks))
        return len(blocks)


class Harness(ScopeAndSleep):
    def __init__(
        self, *, per_ip: bool = False, alert_failures: int = 0, decode: Decode = decode_auth
    ) -> None:
        super().__init__()
        self.table: dict[bytes, dict[str, Any]] = {}
        self.alerts = FakeSink(alert_failures)
        self.forward = FakeSink()
        self.dead_letters = FakeSink()
        self.blocks = FakeBlocks()
        self.processor: SecurityProcessor[SourceRecord] = SecurityProcessor(
            table=self.table,
            key_of=ip_key if per_ip else user_key,
            handle=on_ip_failure if per_ip else on_user_event,
            config=CONFIG,
            decode=decode,
            encode=encode,
            alerts=self.alerts,
            blocks=self.blocks,
            dead_letters=self.dead_letters,
            describe=lambda record: record,
            scope=self.scope,
            forward=None if per_ip else self.forward,
            backoff=Backoff(initial_s=0.5, max_s=2.0),
            sleep=self.sleep,
        )


def records(*values: bytes) -> list[SourceRecord]:
    return [
        SourceRecord(topic=TOPIC, partition=1, offset=n, key=b"k", value=value)
        for n, value in enumerate(values)
    ]


async def test_a_burst_in_one_batch_sends_one_alert_one_block_and_forwards_every_failure() -> None:
    harness = Harness()
    events = [failed(at_s=n) for n in range(4)]
    await harness.processor.process(records(*(encode(e) for e in events)))

    assert len(harness.alerts.calls) == 1
    (alert_record,) = harness.alerts.sent
    assert alert_record.key == b"u1"
    alert = decode(alert_record.value, AuthEvent)
    assert isinstance(alert.payload, SuspiciousLogin)
    assert alert.payload.evidence["failed_attempts"] == "3"
    assert [len(call) for call in harness.blocks.calls] == [1]
    assert harness.blocks.calls[0][0].kind == "user"
    forwarded = harness.forward.sent
    assert [r.key for r in forwarded] == [b"203.0.113.7"] * 4
    assert [r.value for r in forwarded] == [encode(e) for e in events]
    assert harness.scoped == [0, 1, 2, 3]
    assert b"u1" in harness.table
    stats = harness.processor.stats
    assert (stats.events, stats.alerts, stats.blocks, stats.forwarded) == (4, 1, 1, 4)


async def test_our_own_alerts_on_the_topic_are_skipped() -> None:
    harness = Harness()
    await harness.processor.process(records(*(encode(failed(at_s=n)) for n in range(3))))
    (alert_record,) = harness.alerts.sent
    assert alert_record.value is not None
    await harness.processor.process(records(alert_record.value))
    assert len(harness.alerts.sent) == 1
    assert len(harness.forward.sent) == 3


async def test_a_poison_record_is_dead_lettered_and_the_rest_processed() -> None:
    harness = Harness()
    await harness.processor.process(records(b"\xffgarbage", encode(failed())))
    (letter,) = harness.dead_letters.sent
    assert letter.value == b"\xffgarbage"
    assert b"u1" in harness.table
    assert harness.processor.stats.dead_letters == 1


async def test_the_per_ip_processor_keys_by_ip_and_forwards_nothing() -> None:
    harness = Harness(per_ip=True)
    events = [failed(f"user-{n}", at_s=n, ip="198.51.100.1") for n in range(4)]
    await harness.processor.process(records(*(encode(e) for e in events)))
    assert list(harness.table) == [b"198.51.100.1"]
    (alert_record,) = harness.alerts.sent
    assert alert_record.key == b"user-3"
    assert harness.blocks.calls[0][0].kind == "ip"
    assert harness.forward.calls == []


async def test_a_kafka_outage_while_alerting_is_retried_until_it_passes() -> None:
    harness = Harness(alert_failures=2)
    await harness.processor.process(records(*(encode(failed(at_s=n)) for n in range(3))))
    assert len(harness.alerts.sent) == 1
    assert harness.sleeps == [0.5, 1.0]
    assert harness.processor.stats.retries == 2


async def test_a_batch_read_again_after_a_crash_repeats_its_alert_under_the_same_id() -> None:
    harness = Harness()
    batch = records(*(encode(failed(at_s=n)) for n in range(3)))
    await harness.processor.process(batch)
    table_after_first = dict(harness.table)
    await harness.processor.process(batch)
    first, again = harness.alerts.sent
    assert first == again
    assert harness.table == table_after_first
    assert harness.blocks.calls[0] == harness.blocks.calls[1]
