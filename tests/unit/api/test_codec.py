"""The app's codec: local ids at once, or a registry's once registration succeeds (fakes)."""

from __future__ import annotations

import asyncio
import struct

import pytest
from confluent_kafka.schema_registry import Schema

from api.codec import AppCodec
from schemas import examples
from schemas.registry import SchemaSet
from streams.errors import ConfigurationError, ServiceUnavailableError
from streams.kafka.schema_registry import registered_book
from streams.kafka.wire import WireCodec, local_codec
from streams.settings import ApiProcessSettings

SCHEMAS = SchemaSet.load()


class FakeRegistry:
    """Hands out ids from 500 up, one per schema text, as Confluent's registry does."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.subjects: list[str] = []

    def register_schema(self, subject_name: str, schema: Schema) -> int:
        assert schema.schema_str is not None
        self.subjects.append(subject_name)
        return self.ids.setdefault(schema.schema_str, 500 + len(self.ids))

    def get_schema(self, schema_id: int) -> Schema:
        raise AssertionError("the API only writes: it never looks a schema id up")


class Registrations:
    """A registration function that fails as told, counting its attempts."""

    def __init__(self, *failures: Exception, gate: asyncio.Event | None = None) -> None:
        self.failures = list(failures)
        self.gate = gate
        self.attempts = 0
        self.started = asyncio.Event()

    async def __call__(self) -> WireCodec:
        self.attempts += 1
        self.started.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.failures:
            raise self.failures.pop(0)
        return local_codec()


def _schema_id(raw: bytes) -> int:
    magic, schema_id = struct.unpack_from(">bI", raw)
    assert magic == 0
    return int(schema_id)


async def test_without_a_registry_the_local_codec_is_ready_at_once() -> None:
    codec = AppCodec.from_settings(ApiProcessSettings(_env_file=None))
    assert not codec.uses_registry
    assert await codec.codec() is local_codec()
    await codec.ping()


def test_a_registry_codec_is_built_without_talking_to_it() -> None:
    settings = ApiProcessSettings(
        schema_registry_url="http://127.0.0.1:1", schema_registry_timeout_s=0.1
    )
    assert AppCodec.from_settings(settings).uses_registry


async def test_registered_ids_are_the_ones_written() -> None:
    registry = FakeRegistry()

    async def register() -> WireCodec:
        return WireCodec(await registered_book(registry, SCHEMAS, "t7-"))

    codec = await AppCodec(register).codec()
    assert sorted(registry.subjects) == [f"t7-{subject}" for subject in SCHEMAS.subjects]
    event = examples.event("user.created")
    written = _schema_id(codec.encode(event))
    assert written == registry.ids[SCHEMAS.latest("users.events-value").text]
    assert written != _schema_id(local_codec().encode(event))


async def test_registration_happens_once() -> None:
    registrations = Registrations()
    codec = AppCodec(registrations)
    first = await codec.codec()
    assert await codec.codec() is first
    assert registrations.attempts == 1


async def test_a_registry_that_is_away_is_retried_by_the_next_caller() -> None:
    away = ServiceUnavailableError("schema-registry", "connection refused")
    registrations = Registrations(away, away)
    codec = AppCodec(registrations)
    with pytest.raises(ServiceUnavailableError):
        await codec.codec()
    with pytest.raises(ServiceUnavailableError):
        await codec.ping()
    assert await codec.codec() is local_codec()
    await codec.ping()
    assert registrations.attempts == 3


async def test_concurrent_callers_share_one_attempt_and_its_outcome() -> None:
    gate = asyncio.Event()
    refused = ConfigurationError("the registry refused")
    registrations = Registrations(refused, gate=gate)
    codec = AppCodec(registrations)
    waiting = [asyncio.create_task(codec.codec()) for _ in range(5)]
    await registrations.started.wait()
    gate.set()
    outcomes = await asyncio.gather(*waiting, return_exceptions=True)
    assert outcomes == [refused] * 5
    assert registrations.attempts == 1


async def test_a_caller_giving_up_does_not_cancel_the_attempt_of_the_others() -> None:
    gate = asyncio.Event()
    registrations = Registrations(gate=gate)
    codec = AppCodec(registrations)
    impatient = asyncio.create_task(codec.codec())
    patient = asyncio.create_task(codec.codec())
    await registrations.started.wait()
    impatient.cancel()
    gate.set()
    assert await patient is local_codec()
    assert impatient.cancelled()
    assert registrations.attempts == 1


async def test_closing_stops_an_attempt_under_way() -> None:
    registrations = Registrations(gate=asyncio.Event())
    codec = AppCodec(registrations)
    waiting = asyncio.create_task(codec.codec())
    await registrations.started.wait()
    await codec.close()
    with pytest.raises(asyncio.CancelledError):
        await waiting
