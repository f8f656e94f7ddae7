"""The app's wire codec: the project's own schema ids, or a Schema Registry's once registered.

Without `schema_registry_url` the codec is ready at once (ids from `schemas/avro/registry.json`).
With one, our schemas must first be registered there, to learn the ids to write. A registry that
is away when the API starts must not take the API down (reads and health still work, as with
Kafka), so a failed registration is retried by the next webhook that needs the codec (answered
503 meanwhile) and by the readiness probe. Concurrent callers share one attempt rather than
queueing one registry timeout each behind a lock.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from streams.kafka.codec import wire_codec
from streams.kafka.wire import WireCodec, local_codec
from streams.settings import SchemaRegistryConfig

log = logging.getLogger(__name__)

Registration = Callable[[], Coroutine[Any, Any, WireCodec]]


class AppCodec:
    def __init__(self, register: Registration | None = None) -> None:
        """`register` None: the local codec; else how to register and build the codec."""
        self._codec: WireCodec | None = local_codec() if register is None else None
        self._register = register
        self._attempt: asyncio.Task[WireCodec] | None = None

    @classmethod
    def from_settings(cls, settings: SchemaRegistryConfig) -> AppCodec:
        """Built without I/O: the registry client connects on its first request."""
        if settings.schema_registry_url is None:
            return cls()
        return cls(lambda: wire_codec(settings))

    @property
    def uses_registry(self) -> bool:
        return self._register is not None

    async def codec(self) -> WireCodec:
        """The codec, registering first if that has not succeeded yet.

        Raises what registration raises: `ServiceUnavailableError` while the registry is away,
        `ConfigurationError` when it refuses a schema (incompatible with what it holds).
        """
        if self._codec is not None:
            return self._codec
        assert self._register is not None  # no codec yet means a registry is configured
        if self._attempt is None or self._attempt.done():
            self._attempt = asyncio.create_task(self._register())
            self._attempt.add_done_callback(self._settled)
        # Shielded: a caller that gives up (client gone, probe timeout) must not cancel the
        # attempt the other callers are waiting on.
        return await asyncio.shield(self._attempt)

    async def ping(self) -> None:
        """Readiness: the codec can be had (registration done, or done now)."""
        await self.codec()

    async def close(self) -> None:
        """Stops waiting for a registration still under way (the app is shutting down)."""
        if self._attempt is not None and not self._attempt.done():
            self._attempt.cancel()
            await asyncio.wait([self._attempt])

    def _settled(self, attempt: asyncio.Task[WireCodec]) -> None:
        if attempt.cancelled():
            return
        error = attempt.exception()
        if error is None:
            self._codec = attempt.result()
            log.info("schemas registered; writing the Schema Registry's ids")
        else:
            # Every waiter receives the error too; this line covers an attempt nobody awaited.
            log.warning("registering the schemas failed: %s", error)
