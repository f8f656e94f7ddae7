"""The process's one Kafka producer, answering only once the broker has acknowledged a write.

A webhook is only acknowledged upstream after its event is durably in Kafka, so `send` awaits the
broker's acknowledgement (`acks="all"`, idempotent) and is bounded by the delivery timeout: past
it, the caller gets a `ServiceUnavailableError` it can turn into a 503 instead of hanging.

Kafka being away at boot must not take the API down with it (health, reads and metrics still
work), so a failed start leaves the producer un-started and the next send or ping tries again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    KafkaError,
    OutOfOrderSequenceNumber,
    ProducerFenced,
    UnknownProducerId,
)

from streams.errors import ServiceUnavailableError
from streams.kafka.client_security import aiokafka_security
from streams.kafka.partitioner import KeyPartitioner
from streams.settings import KafkaSettings

log = logging.getLogger(__name__)

SERVICE = "kafka"

# Errors after which aiokafka's idempotent producer is dead: its sender task has ended and every
# later send raises the same error. A broker restart can cause the first (the chaos run found the
# API answering 503 to every webhook after one); a new client, with a new producer id, recovers.
FATAL_PRODUCER_ERRORS = (OutOfOrderSequenceNumber, UnknownProducerId, ProducerFenced)

# A record's headers, in order, as Kafka carries them.
Headers = tuple[tuple[str, bytes], ...]


@dataclass(frozen=True, slots=True)
class RecordPosition:
    """Where the broker stored a record."""

    topic: str
    partition: int
    offset: int


class Stored(Protocol):
    """Where the broker stored a record, as a client reports it (aiokafka's `RecordMetadata`)."""

    @property
    def topic(self) -> str: ...

    @property
    def partition(self) -> int: ...

    @property
    def offset(self) -> int: ...


class ProducerDriver(Protocol):
    """The few operations needed from a Kafka client library; a seam for unit-test fakes."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def enqueue(
        self, topic: str, key: bytes, value: bytes, headers: list[tuple[str, bytes]]
    ) -> asyncio.Future[Stored]:
        """Hand the record to the client; the future settles when the broker answered."""
        ...

    async def fetch_metadata(self) -> None: ...


class AioKafkaDriver:
    """`ProducerDriver` on aiokafka; its exceptions are translated by `EventProducer`."""

    def __init__(self, settings: KafkaSettings) -> None:
        # The request timeout also bounds how long aiokafka keeps an unsent batch, so a record
        # that could not be delivered in time fails instead of reaching Kafka much later.
        self._producer: Any = AIOKafkaProducer(
            bootstrap_servers=settings.bootstrap,
            client_id=settings.client_id,
            acks="all",
            enable_idempotence=True,
            linger_ms=settings.linger_ms,
            partitioner=KeyPartitioner(),
            request_timeout_ms=int(settings.delivery_timeout_s * 1000),
            **aiokafka_security(settings),
        )

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def enqueue(
        self, topic: str, key: bytes, value: bytes, headers: list[tuple[str, bytes]]
    ) -> asyncio.Future[Stored]:
        delivery: asyncio.Future[Stored] = await self._producer.send(
            topic, value=value, key=key, headers=headers
        )
        return delivery

    async def fetch_metadata(self) -> None:
        await self._producer.client.fetch_all_metadata()


DriverFactory = Callable[[], ProducerDriver]


class UnconfirmedDeliveryError(ServiceUnavailableError):
    """No acknowledgement within the delivery timeout, though the client has the record and may
    still deliver it (a broker restarting: it retries): `outcome` settles when the client knows,
    with the position or a `ServiceUnavailableError`. Whoever must not produce a second copy
    (the webhook ledger's claim) waits for it rather than taking the timeout for a failure."""

    def __init__(self, service: str, detail: str, outcome: asyncio.Future[RecordPosition]) -> None:
        super().__init__(service, detail)
        self.outcome = outcome


def _position(stored: Stored) -> RecordPosition:
    return RecordPosition(stored.topic, stored.partition, stored.offset)


def _retrieved(future: asyncio.Future[RecordPosition]) -> None:
    """Marks a delivery's error as seen: its outcome may have nobody waiting for it."""
    if not future.cancelled():
        future.exception()


class EventProducer:
    """Lazily (re)started, time-bounded, acknowledged sends; driver errors become
    `ServiceUnavailableError("kafka", ...)`.

    A send that times out may still reach Kafka later (a record cannot be recalled once handed to
    the client): it raises `UnconfirmedDeliveryError`, whose `outcome` tells when the client
    knows. Callers also derive event ids deterministically, so consumers can drop the copy a
    retried request produces when nobody waited for that outcome.
    """

    def __init__(
        self, settings: KafkaSettings, driver_factory: DriverFactory | None = None
    ) -> None:
        self._timeout_s = settings.delivery_timeout_s
        self._factory: DriverFactory = driver_factory or (lambda: AioKafkaDriver(settings))
        self._driver: ProducerDriver | None = None
        self._lock = asyncio.Lock()
        self._closed = False

    @property
    def started(self) -> bool:
        return self._driver is not None

    async def start(self) -> None:
        """Try to connect; on failure log and stay un-started (the next send tries again)."""
        try:
            async with asyncio.timeout(self._timeout_s):
                await self._ensure_started()
        except (ServiceUnavailableError, TimeoutError) as exc:
            log.warning("Kafka producer not started, will retry on first use: %s", exc)

    async def stop(self) -> None:
        async with self._lock:
            self._closed = True
            driver, self._driver = self._driver, None
            if driver is not None:
                await driver.stop()

    async def __aenter__(self) -> EventProducer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def send(
        self, topic: str, key: bytes, value: bytes, headers: Sequence[tuple[str, bytes]] = ()
    ) -> RecordPosition:
        """Return once the broker acknowledged the record, or raise within the delivery timeout:
        `UnconfirmedDeliveryError` once the record is with the client (it may still arrive)."""
        driver: ProducerDriver | None = None
        delivery: asyncio.Future[Stored] | None = None
        try:
            async with asyncio.timeout(self._timeout_s):
                driver = await self._ensure_started()
                delivery = await driver.enqueue(topic, key, value, list(headers))
                # Shielded: cancelling the client's delivery future would not unsend the
                # record, it would only hide its outcome from the client's bookkeeping.
                stored = await asyncio.shield(delivery)
            return _position(stored)
        except TimeoutError as exc:
            detail = f"no acknowledgement for {topic} within {self._timeout_s:g} s"
            if delivery is None or driver is None:  # never handed to the client
                raise ServiceUnavailableError(SERVICE, detail) from exc
            outcome = self._outcome(delivery, driver, topic)
            raise UnconfirmedDeliveryError(SERVICE, detail, outcome) from exc
        except KafkaError as exc:
            raise await self._translated(exc, driver, topic) from exc

    async def _translated(
        self, error: KafkaError, driver: ProducerDriver | None, topic: str
    ) -> ServiceUnavailableError:
        if isinstance(error, FATAL_PRODUCER_ERRORS) and driver is not None:
            await self._replace(driver, error)
        return ServiceUnavailableError(SERVICE, f"sending to {topic}: {error!r}")

    def _outcome(
        self, delivery: asyncio.Future[Stored], driver: ProducerDriver, topic: str
    ) -> asyncio.Future[RecordPosition]:
        """`delivery`'s outcome as `send` would have answered it, errors translated."""

        async def outcome() -> RecordPosition:
            try:
                stored = await asyncio.shield(delivery)
            except KafkaError as exc:
                raise await self._translated(exc, driver, topic) from exc
            return _position(stored)

        translated = asyncio.ensure_future(outcome())
        translated.add_done_callback(_retrieved)
        return translated

    async def ping(self, timeout_s: float) -> None:
        """Prove a broker answers a metadata request within `timeout_s`."""
        try:
            async with asyncio.timeout(timeout_s):
                driver = await self._ensure_started()
                await driver.fetch_metadata()
        except TimeoutError as exc:
            raise ServiceUnavailableError(SERVICE, f"no answer within {timeout_s:g} s") from exc
        except KafkaError as exc:
            raise ServiceUnavailableError(SERVICE, repr(exc)) from exc

    async def _replace(self, dead: ProducerDriver, error: KafkaError) -> None:
        """Drop a client that can no longer send, so that the next send starts a new one."""
        async with self._lock:
            if self._driver is not dead:
                return  # another send replaced it already
            self._driver = None
        log.warning("Kafka producer replaced after a fatal error: %r", error)
        await self._discard(dead)

    async def _ensure_started(self) -> ProducerDriver:
        if self._driver is not None:
            return self._driver
        async with self._lock:
            if self._closed:
                raise ServiceUnavailableError(SERVICE, "producer is stopped")
            if self._driver is None:
                self._driver = await self._start_driver()
            return self._driver

    async def _start_driver(self) -> ProducerDriver:
        driver = self._factory()
        try:
            await driver.start()
        except BaseException as exc:
            # Also on cancellation (a timed-out start): the half-started client holds sockets.
            await self._discard(driver)
            if isinstance(exc, KafkaError | OSError):
                raise ServiceUnavailableError(SERVICE, f"cannot connect: {exc!r}") from exc
            raise
        log.info("Kafka producer started")
        return driver

    @staticmethod
    async def _discard(driver: ProducerDriver) -> None:
        try:
            await driver.stop()
        except (KafkaError, OSError) as exc:
            log.warning("closing a Kafka producer that failed to start: %r", exc)
