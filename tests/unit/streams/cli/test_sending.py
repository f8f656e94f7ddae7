from __future__ import annotations

from streams.cli.sending import Outgoing, first_failure, send_in_key_order
from streams.errors import ServiceUnavailableError
from streams.kafka.event_producer import RecordPosition
from tests.unit.fakes import FakeProducer


def records(*pairs: tuple[str, str]) -> list[Outgoing]:
    return [Outgoing("t", key.encode(), value.encode()) for key, value in pairs]


async def test_each_keys_records_arrive_in_input_order() -> None:
    sink = FakeProducer()
    batch = records(("a", "a1"), ("b", "b1"), ("a", "a2"), ("b", "b2"), ("a", "a3"))
    results = await send_in_key_order(sink, batch)
    assert all(isinstance(result, RecordPosition) for result in results)
    assert [v for _, k, v in sink.sent if k == b"a"] == [b"a1", b"a2", b"a3"]
    assert [v for _, k, v in sink.sent if k == b"b"] == [b"b1", b"b2"]
    assert sorted(r.offset for r in results if isinstance(r, RecordPosition)) == [0, 1, 2, 3, 4]


async def test_a_failure_holds_back_the_rest_of_its_key_but_not_other_keys() -> None:
    sink = FakeProducer(failing=[b"a2"])
    batch = records(("a", "a1"), ("a", "a2"), ("a", "a3"), ("b", "b1"), ("b", "b2"))
    results = await send_in_key_order(sink, batch)
    assert isinstance(results[0], RecordPosition)
    assert isinstance(results[1], ServiceUnavailableError)
    assert results[2] is None
    assert sorted(sink.sent) == [("t", b"a", b"a1"), ("t", b"b", b"b1"), ("t", b"b", b"b2")]
    assert first_failure(results) is results[1]


async def test_nothing_to_send_sends_nothing() -> None:
    assert await send_in_key_order(FakeProducer(), []) == []
    assert first_failure([]) is None
