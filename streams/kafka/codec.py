"""The wire codec a process writes and reads with, chosen from the settings.

Without `schema_registry_url`, the project's own schema ids (`schemas/avro/registry.json`).
With one, our schemas are registered there first (idempotent: every process registers the same
ones) to learn the ids to write; ids the registry gave to other or older schemas are fetched when
first seen. The API and the worker build their codec here, so they always agree on the ids.
"""

from __future__ import annotations

from schemas.registry import SchemaSet
from streams.kafka.schema_registry import connect_client, registered_book
from streams.kafka.wire import WireCodec, local_codec
from streams.settings import SchemaRegistryConfig


async def wire_codec(settings: SchemaRegistryConfig) -> WireCodec:
    """Raises `ServiceUnavailableError` while the registry is away and `ConfigurationError`
    when it refuses a schema (one incompatible with what it holds)."""
    if settings.schema_registry_url is None:
        return local_codec()
    client = connect_client(settings.schema_registry_url, settings.schema_registry_timeout_s)
    return WireCodec(await registered_book(client, SchemaSet.load(), settings.topic_prefix))
