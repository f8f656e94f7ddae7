"""Where schema ids come from: our own schema set, or a Confluent Schema Registry.

Without a registry, ids are those of the project's manifest (`schemas/avro/registry.json`), and
the API serves that set read-only with the Schema Registry REST paths (`RegistryViews`), so stock
Confluent clients decode our topics. With a registry (`TRIBUTARY_SCHEMA_REGISTRY_URL`), the
current schemas are registered there at start and its ids are written instead.

Topic prefixes: our schemas are kept per BASE subject (`orders.events-value`), and the codec
finds the subject from the event's model, never from the topic name. Registries, which clients
reach by the actual topic name (TopicNameStrategy), know the subjects by the deployment's
prefixed names (`t123-orders.events-value`). A schema has one id whatever subject names it (as in
Confluent's registry), so prefixed and unprefixed deployments write the same ids.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar

import httpx2
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from schemas.registry import RegisteredSchema, SchemaSet
from streams.errors import ConfigurationError, ServiceUnavailableError, TributaryError
from streams.kafka.wire import SchemaBook, SchemaMismatchError, UnknownSchemaIdError

T = TypeVar("T")

SERVICE = "schema-registry"
AVRO = "AVRO"
# Schema Registry error codes, which Confluent clients read from error bodies.
SUBJECT_NOT_FOUND = 40401
VERSION_NOT_FOUND = 40402
SCHEMA_NOT_FOUND = 40403
INVALID_VERSION = 42202


class RegistryLookupError(TributaryError):
    """A registry path that names nothing; carries the status and body a registry would send."""

    def __init__(self, http_status: int, error_code: int, message: str) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.error_code = error_code
        self.message = message

    @property
    def body(self) -> dict[str, Any]:
        return {"error_code": self.error_code, "message": self.message}


class RegistryViews:
    """The read-only Schema Registry REST answers for one deployment, as JSON-able values.

    `schema` serves `/schemas/ids/{id}`, `subjects` `/subjects`, `versions`
    `/subjects/{subject}/versions` and `version` `/subjects/{subject}/versions/{version}`
    (`latest` included). Unknown names raise `RegistryLookupError`, whose `http_status` and
    `body` are the registry's own, since clients parse the `error_code`.

    `associations` serves `/associations/resources/{namespace}/{topic}`: confluent-kafka 2.16's
    default subject strategy asks it first, and an empty list (or a 404) makes it fall back to
    `<topic>-value`, the subjects we serve.
    """

    def __init__(self, schema_set: SchemaSet, topic_prefix: str) -> None:
        self._schemas = schema_set
        self._prefix = topic_prefix

    def schema(self, schema_id: int) -> dict[str, Any]:
        entry = self._schemas.by_id(schema_id)
        if entry is None:
            raise RegistryLookupError(404, SCHEMA_NOT_FOUND, f"Schema {schema_id} not found")
        return {"schema": entry.text}

    def subjects(self) -> list[str]:
        return [f"{self._prefix}{subject}" for subject in self._schemas.subjects]

    def versions(self, subject: str) -> list[int]:
        return [entry.version for entry in self._history(subject)]

    def version(self, subject: str, version: str) -> dict[str, Any]:
        history = self._history(subject)
        entry = history[-1] if version in ("latest", "-1") else _nth(history, version, subject)
        return {
            "subject": subject,
            "version": entry.version,
            "id": entry.id,
            "schema": entry.text,
        }

    def associations(self) -> list[dict[str, Any]]:
        return []

    def _history(self, subject: str) -> list[RegisteredSchema]:
        base = subject.removeprefix(self._prefix) if subject.startswith(self._prefix) else None
        history = list(self._schemas.history(base)) if base is not None else []
        if not history:
            raise RegistryLookupError(404, SUBJECT_NOT_FOUND, f"Subject '{subject}' not found")
        return history


def _nth(history: list[RegisteredSchema], version: str, subject: str) -> RegisteredSchema:
    if not version.isdigit() or int(version) < 1:
        message = f"The specified version '{version}' is not a valid version id"
        raise RegistryLookupError(422, INVALID_VERSION, message)
    if int(version) > len(history):
        message = f"Version {version} not found for subject '{subject}'"
        raise RegistryLookupError(404, VERSION_NOT_FOUND, message)
    return history[int(version) - 1]


class RegistryClient(Protocol):
    """The part of `confluent_kafka.schema_registry.SchemaRegistryClient` in use (blocking)."""

    def register_schema(self, subject_name: str, schema: Any) -> int: ...

    def get_schema(self, schema_id: int) -> Any: ...


def connect_client(url: str, timeout_s: float) -> RegistryClient:
    client: RegistryClient = SchemaRegistryClient({"url": url, "timeout": timeout_s})
    return client


async def registered_book(
    client: RegistryClient, schema_set: SchemaSet, topic_prefix: str
) -> SchemaBook:
    """Registers every current schema under the deployment's subjects; a book of their ids.

    Done once at start; the client blocks, so each call runs in a worker thread. A registry that
    refuses a schema (incompatible with what it holds) is a deployment error, not a retry.
    """
    subjects = schema_set.subjects
    ids = await asyncio.gather(
        *(
            asyncio.to_thread(_register, client, f"{topic_prefix}{subject}", schema_set, subject)
            for subject in subjects
        )
    )
    writer_ids = dict(zip(subjects, ids, strict=True))
    return SchemaBook(
        readers={subject: schema_set.latest(subject).schema for subject in subjects},
        writer_ids=writer_ids,
        known={writer_ids[s]: (s, schema_set.latest(s).schema) for s in subjects},
        fetch=schema_fetcher(client),
    )


def _register(client: RegistryClient, name: str, schema_set: SchemaSet, subject: str) -> int:
    text = schema_set.latest(subject).text
    return _call(lambda: client.register_schema(name, Schema(text, AVRO)), f"registering {name}")


def schema_fetcher(client: RegistryClient) -> Callable[[int], Mapping[str, Any]]:
    """Looks up a schema id we did not register ourselves (another producer's, an older one).

    It blocks, but once per unknown id in the life of the process: the book keeps the answer.
    """

    def fetch(schema_id: int) -> Mapping[str, Any]:
        schema = _call(lambda: client.get_schema(schema_id), f"fetching schema id {schema_id}")
        if schema.schema_type not in (None, AVRO):
            raise SchemaMismatchError(f"schema id {schema_id} is {schema.schema_type}, not Avro")
        try:
            document = json.loads(schema.schema_str)
        except ValueError as exc:
            raise SchemaMismatchError(f"schema id {schema_id} is not JSON") from exc
        if not isinstance(document, dict):
            raise SchemaMismatchError(f"schema id {schema_id} is not a record schema")
        return document

    return fetch


def _call(operation: Callable[[], T], doing: str) -> T:
    try:
        return operation()
    except SchemaRegistryError as exc:
        raise _translated(exc, doing) from exc
    except (httpx2.HTTPError, OSError) as exc:
        raise ServiceUnavailableError(SERVICE, f"{doing}: {exc}") from exc


def _translated(error: SchemaRegistryError, doing: str) -> TributaryError:
    status, code = error.http_status_code, error.error_code
    if code == SCHEMA_NOT_FOUND:
        return UnknownSchemaIdError(f"{doing}: the registry has no such schema")
    if status >= 500 or status in (408, 429):
        return ServiceUnavailableError(SERVICE, f"{doing}: {error}")
    return ConfigurationError(f"{doing}: the registry refused ({error})")
