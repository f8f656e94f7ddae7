"""The wire codec a process writes and reads with, chosen from the settings.

Without `schema_registry_url`, the project's own schema ids (`schemas/avro/registry.json`).
With one, our schemas are registered there first (idempotent: every process registers the same
ones) to learn the ids to write; ids the registry gave to other or older schemas are fetched when
first seen. The API and the worker build their codec here, so they always agree on the ids.
"""

from __future__ import annotations

from schemas.registry import SchemaSet
from streams.kafka.schema_registry import connect_client, registered_book
from streams.kafka.wire import SchemaBook, WireCodec, local_codec
from streams.settings import SchemaRegistryConfig


async def wire_codec(settings: SchemaRegistryConfig, *, recent_encodes: int = 0) -> WireCodec:
    """Raises `ServiceUnavailableError` while the registry is away and `ConfigurationError`
    when it refuses a schema (one incompatible with what it holds).

    `recent_encodes`: how many of the events it encodes the codec keeps for reading them back
    (`WireCodec`; a worker reads back most of what it writes, the API none)."""
    if settings.schema_registry_url is None:
        if not recent_encodes:
            return local_codec()
        return WireCodec(SchemaBook.local(SchemaSet.load()), recent_encodes=recent_encodes)
    client = connect_client(settings.schema_registry_url, settings.schema_registry_timeout_s)
    book = await registered_book(client, SchemaSet.load(), settings.topic_prefix)
    return WireCodec(book, recent_encodes=recent_encodes)
