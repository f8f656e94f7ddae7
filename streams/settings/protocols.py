"""What code asks for when it needs a few pieces of a root rather than one section.

Each protocol names only the attributes its users read, so any root that has them (and the
multi-process `Settings`) can be passed, and nothing else of the root can be reached through it.
"""

from __future__ import annotations

from typing import Protocol

from streams.settings.sections import KafkaSettings, WorkerSettings


class SchemaRegistryConfig(Protocol):
    """Where the Schema Registry is (None: the project's own schema ids) and the topic prefix,
    which the registry's subjects carry (`streams.kafka.codec.wire_codec`)."""

    @property
    def schema_registry_url(self) -> str | None: ...

    @property
    def schema_registry_timeout_s(self) -> float: ...

    @property
    def topic_prefix(self) -> str: ...


class FaustAppConfig(Protocol):
    """The worker's Faust app: its id, web server, store and producer (`worker`), and the
    brokers and topic layout (`kafka`) (`streams.runtime.create_faust_app`)."""

    @property
    def worker(self) -> WorkerSettings: ...

    @property
    def kafka(self) -> KafkaSettings: ...
