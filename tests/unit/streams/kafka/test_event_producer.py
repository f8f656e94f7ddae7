"""EventProducer's lifecycle and error translation, on a fake driver (no broker)."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaTimeoutError,
    NotLeaderForPartitionError,
    OutOfOrderSequenceNumber,
    ProducerFenced,
    UnknownProducerId,
)

from streams.errors import ServiceUnavailableError
from streams.kafka.event_producer import (
    EventProducer,
    ProducerDriver,
    RecordPosition,
    Stored,
    UnconfirmedDeliveryError,
)
from streams.settings import KafkaSettings


class FakeDriver:
    def __init__(self, start_error: Exception | None = None) -> None:
        self.start_error = start_error
        self.send_error: Exception | None = None
        self.hang = asyncio.Event()  # never set: a send or ping that never gets an answer
        self.hangs = False
        self.takes_nothing = False  # enqueue waits on, as aiokafka does for a topic's metadata
        self.started = False
        self.stopped = False
        self.sent: list[tuple[str, bytes, bytes, list[tuple[str, bytes]]]] = []

    async def start(self) -> None:
        if self.start_error:
            raise self.start_error
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    async def enqueue(
        self, topic: str, key: bytes, value: bytes, headers: list[tuple[str, bytes]]
    ) -> asyncio.Future[Stored]:
        """Taken at once; answered once `hang` is set when `hangs`, as a broker away."""
        if self.takes_nothing:
            await asyncio.Event().wait()

        async def answer() -> Stored:
            if self.hangs:
                await self.hang.wait()
            if self.send_error:
                raise self.send_error
            self.sent.append((topic, key, value, headers))
            return RecordPosition(topic, 0, len(self.sent) - 1)

        return asyncio.ensure_future(answer())

    async def fetch_metadata(self) -> None:
        if self.hangs:
            await self.hang.wait()


class Drivers:
    """A driver factory handing out prepared drivers in order, remembering what it made."""

    def __init__(self, *drivers: FakeDriver) -> None:
        self.pending = list(drivers)
        self.made: list[FakeDriver] = []

    def __call__(self) -> ProducerDriver:
        driver = self.pending.pop(0)
        self.made.append(driver)
        return driver


def _producer(drivers: Drivers, delivery_timeout_s: float = 5.0) -> EventProducer:
    return EventProducer(KafkaSettings(delivery_timeout_s=delivery_timeout_s), drivers)


async def test_send_returns_the_acknowledged_position() -> None:
    driver = FakeDriver()
    async with _producer(Drivers(driver)) as producer:
        position = await producer.send("t.orders", b"k", b"v", [("event_type", b"x")])
    assert position == RecordPosition("t.orders", 0, 0)
    assert driver.sent == [("t.orders", b"k", b"v", [("event_type", b"x")])]
    assert driver.stopped


async def test_a_failed_start_leaves_it_unstarted_and_the_next_send_connects() -> None:
    down, up = FakeDriver(start_error=KafkaConnectionError("refused")), FakeDriver()
    drivers = Drivers(down, up)
    producer = _producer(drivers)
    await producer.start()  # must not raise
    assert not producer.started
    assert down.stopped, "the half-started client is closed"
    await producer.send("t.orders", b"k", b"v")
    assert producer.started
    assert up.sent
    await producer.stop()


async def test_a_send_while_kafka_is_unreachable_is_a_kafka_outage() -> None:
    drivers = Drivers(FakeDriver(start_error=KafkaConnectionError("refused")))
    with pytest.raises(ServiceUnavailableError) as caught:
        await _producer(drivers).send("t.orders", b"k", b"v")
    assert caught.value.service == "kafka"


@pytest.mark.parametrize(
    "error", [KafkaTimeoutError(), NotLeaderForPartitionError(), KafkaConnectionError("reset")]
)
async def test_driver_errors_during_send_become_kafka_outages(error: Exception) -> None:
    driver = FakeDriver()
    producer = _producer(Drivers(driver))
    driver.send_error = error
    with pytest.raises(ServiceUnavailableError) as caught:
        await producer.send("t.orders", b"k", b"v")
    assert caught.value.service == "kafka"
    assert isinstance(caught.value.__cause__, type(error))
    await producer.stop()


@pytest.mark.parametrize(
    "error", [OutOfOrderSequenceNumber(), UnknownProducerId(), ProducerFenced()]
)
async def test_a_client_whose_producer_state_the_broker_refused_is_replaced(
    error: Exception,
) -> None:
    """aiokafka's idempotent producer dies on these (its sender task ends, and every later send
    raises the same error): the chaos run's broker restart left the API answering 503 to every
    webhook until it was restarted. The failed send is a 503; the next one gets a new client
    (a new producer id), and the dead one is closed."""
    dead, fresh = FakeDriver(), FakeDriver()
    producer = _producer(Drivers(dead, fresh))
    dead.send_error = error
    with pytest.raises(ServiceUnavailableError):
        await producer.send("t.orders", b"k", b"v")

    position = await producer.send("t.orders", b"k", b"v2")

    assert dead.stopped
    assert fresh.sent == [("t.orders", b"k", b"v2", [])]
    assert position == RecordPosition("t.orders", 0, 0)
    await producer.stop()


async def test_an_unacknowledged_send_gives_up_at_the_delivery_timeout() -> None:
    driver = FakeDriver()
    driver.hangs = True
    producer = _producer(Drivers(driver), delivery_timeout_s=0.05)
    with pytest.raises(ServiceUnavailableError, match="no acknowledgement"):
        await producer.send("t.orders", b"k", b"v")
    await producer.stop()


async def test_a_timed_out_send_tells_when_the_client_delivered_it_after_all() -> None:
    """The record is the client's once handed over: the timeout is not its outcome."""
    driver = FakeDriver()
    driver.hangs = True
    producer = _producer(Drivers(driver), delivery_timeout_s=0.05)
    with pytest.raises(UnconfirmedDeliveryError) as caught:
        await producer.send("t.orders", b"k", b"v")
    assert not caught.value.outcome.done()
    driver.hang.set()  # the broker is back: the client's retry is acknowledged
    assert await caught.value.outcome == RecordPosition("t.orders", 0, 0)
    await producer.stop()


async def test_a_send_the_client_never_took_is_a_plain_outage() -> None:
    """Timed out before the client had the record: it cannot arrive, there is nothing to wait
    for (a webhook's claim is released at once)."""
    driver = FakeDriver()
    driver.takes_nothing = True
    producer = _producer(Drivers(driver), delivery_timeout_s=0.05)
    with pytest.raises(ServiceUnavailableError, match="no acknowledgement") as caught:
        await producer.send("t.orders", b"k", b"v")
    assert not isinstance(caught.value, UnconfirmedDeliveryError)
    await producer.stop()


async def test_a_timed_out_send_the_client_then_fails_is_a_kafka_outage() -> None:
    driver = FakeDriver()
    driver.hangs = True
    driver.send_error = KafkaTimeoutError()
    producer = _producer(Drivers(driver), delivery_timeout_s=0.05)
    with pytest.raises(UnconfirmedDeliveryError) as caught:
        await producer.send("t.orders", b"k", b"v")
    driver.hang.set()
    with pytest.raises(ServiceUnavailableError, match="KafkaTimeoutError"):
        await caught.value.outcome
    await producer.stop()


async def test_concurrent_first_sends_start_one_driver() -> None:
    drivers = Drivers(FakeDriver(), FakeDriver())
    producer = _producer(drivers)
    await asyncio.gather(*(producer.send("t.orders", b"k", b"v") for _ in range(10)))
    assert len(drivers.made) == 1
    assert len(drivers.made[0].sent) == 10
    await producer.stop()


async def test_a_stopped_producer_refuses_to_send() -> None:
    producer = _producer(Drivers(FakeDriver()))
    await producer.start()
    await producer.stop()
    with pytest.raises(ServiceUnavailableError):
        await producer.send("t.orders", b"k", b"v")


async def test_ping_reports_an_unreachable_or_silent_broker() -> None:
    silent = FakeDriver()
    silent.hangs = True
    with pytest.raises(ServiceUnavailableError):
        await _producer(Drivers(FakeDriver(start_error=KafkaConnectionError("x")))).ping(1.0)
    producer = _producer(Drivers(silent))
    with pytest.raises(ServiceUnavailableError, match="no answer"):
        await producer.ping(0.05)
    await producer.stop()
