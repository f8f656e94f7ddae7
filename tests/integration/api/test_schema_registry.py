"""`/schema-registry/`: stock Confluent clients read our topics through the API's registry paths."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext
from pytest_aiohttp import AiohttpClient, AiohttpServer

from api.app import create_app
from api.families import BY_NAME, FAMILIES
from api.signature import signed_headers
from schemas import examples
from schemas.registry import SchemaSet
from streams.settings import Settings
from tests.integration.api.support import closed_port, post_webhook, topic_records

Client = TestClient[Any, Any]
REGISTRY_JSON = "application/vnd.schemaregistry.v1+json"
SCHEMAS = SchemaSet.load()


async def _registry_answer(response: ClientResponse, status: int) -> Any:
    assert response.status == status, await response.text()
    assert response.content_type == REGISTRY_JSON
    return await response.json(content_type=None)


async def test_subjects_versions_and_schemas_are_served_for_the_deployments_topics(
    client: Client, settings: Settings
) -> None:
    prefix = settings.topic_prefix
    subjects = await _registry_answer(await client.get("/schema-registry/subjects"), 200)
    assert subjects == [f"{prefix}{subject}" for subject in SCHEMAS.subjects]

    latest = SCHEMAS.latest("auth.events-value")
    path = f"/schema-registry/subjects/{prefix}auth.events-value/versions"
    versions = [entry.version for entry in SCHEMAS.history("auth.events-value")]
    assert await _registry_answer(await client.get(path), 200) == versions
    for version in ("latest", "-1", str(latest.version)):
        answer = await _registry_answer(await client.get(f"{path}/{version}"), 200)
        assert answer == {
            "subject": f"{prefix}auth.events-value",
            "version": latest.version,
            "id": latest.id,
            "schema": latest.text,
        }
    by_id = await client.get(f"/schema-registry/schemas/ids/{latest.id}?subject=x&format=y")
    assert json.loads((await _registry_answer(by_id, 200))["schema"]) == latest.schema
    associations = "/schema-registry/associations/resources/-/any-topic?resourceType=topic"
    assert await _registry_answer(await client.get(associations), 200) == []


@pytest.mark.parametrize(
    ("path", "status", "error_code"),
    [
        ("/schema-registry/schemas/ids/999999", 404, 40403),
        ("/schema-registry/subjects/orders.events-value/versions", 404, 40401),
        ("/schema-registry/subjects/{prefix}orders.events-value/versions/9", 404, 40402),
        ("/schema-registry/subjects/{prefix}orders.events-value/versions/zero", 422, 42202),
        ("/schema-registry/schemas/ids/not-a-number", 404, 404),
        ("/schema-registry/config", 404, 404),
    ],
)
async def test_unknown_names_get_the_registrys_own_errors_not_problems(
    client: Client, settings: Settings, path: str, status: int, error_code: int
) -> None:
    response = await client.get(path.format(prefix=settings.topic_prefix))
    answer = await _registry_answer(response, status)
    assert answer["error_code"] == error_code
    assert answer["message"]


async def test_registering_is_refused_since_the_schemas_are_released_with_the_code(
    client: Client, settings: Settings
) -> None:
    path = f"/schema-registry/subjects/{settings.topic_prefix}users.events-value/versions"
    response = await client.post(path, json={"schema": '{"type": "string"}'})
    assert (await _registry_answer(response, 405))["error_code"] == 405


def _confluent_decode(url: str, values: list[tuple[str, bytes]]) -> list[dict[str, Any]]:
    """What an analytics consumer does: Confluent's own client and deserializer (blocking)."""
    deserializer = AvroDeserializer(SchemaRegistryClient({"url": url}))
    decoded = []
    for topic, value in values:
        record = deserializer(value, SerializationContext(topic, MessageField.VALUE))
        assert isinstance(record, dict)
        decoded.append(record)
    return decoded


async def test_confluents_avro_deserializer_reads_every_familys_records_via_the_api(
    aiohttp_server: AiohttpServer, settings: Settings
) -> None:
    """The proof of issue 3: the API's paths are enough for stock clients to read our topics."""
    server = await aiohttp_server(create_app(settings))
    base_url = f"http://127.0.0.1:{server.port}"
    async with aiohttp.ClientSession(base_url) as session:
        for family in FAMILIES:
            for event_type in family.webhook.event_types:
                raw = json.dumps(examples.webhook_body(event_type)).encode()
                secret = settings.webhook.secret_for(family.name)
                assert secret is not None
                headers = signed_headers(
                    secret.get_secret_value(), f"msg_{event_type}", int(time.time()), raw
                ) | {"Content-Type": "application/json"}
                async with session.post(family.path, data=raw, headers=headers) as response:
                    assert response.status == 202, await response.text()

    for family in FAMILIES:
        records = await topic_records(settings, family.contract.topic)
        assert len(records) == len(family.webhook.event_types)
        values = [(record.topic, record.value) for record in records]
        # The client blocks, and the server it asks runs on this loop: off the loop it goes.
        decoded = await asyncio.to_thread(_confluent_decode, f"{base_url}/schema-registry", values)
        for record in decoded:
            expected: Any = examples.event(record["event_type"])
            assert record["source"] == f"webhook:{family.name}"
            assert record["correlation_id"] == "corr-1"
            # The reader's own view of the event, validated back through our contract.
            event: Any = family.contract.event_model.model_validate(record)
            assert event.payload == expected.payload
            assert event.occurred_at == expected.occurred_at


async def test_with_a_registry_configured_the_local_set_is_not_served_and_its_absence_is_503(
    aiohttp_client: AiohttpClient, settings: Settings
) -> None:
    away = settings.model_copy(
        update={
            "schema_registry_url": f"http://127.0.0.1:{closed_port()}",
            "schema_registry_timeout_s": 1.0,
        }
    )
    # The API still starts (reads and health work) while the registry is away.
    client = await aiohttp_client(create_app(away))

    subjects = await _registry_answer(await client.get("/schema-registry/subjects"), 404)
    assert "Schema Registry" in subjects["message"]

    ready = await client.get("/health/ready")
    assert ready.status == 503
    checks = (await ready.json(content_type=None))["checks"]
    assert checks["schema-registry"].startswith("down: ")
    assert checks["kafka"] == "ok"

    body = examples.webhook_body("order.paid")
    response = await post_webhook(client, settings, "orders", body)
    assert response.status == 503
    assert (await response.json(content_type=None))["service"] == "schema-registry"
    assert await topic_records(settings, BY_NAME["orders"].contract.topic) == []


async def test_a_confluent_client_reads_our_error_codes(
    aiohttp_server: AiohttpServer, settings: Settings
) -> None:
    server = await aiohttp_server(create_app(settings))
    url = f"http://127.0.0.1:{server.port}/schema-registry"

    def unknown_id() -> SchemaRegistryError:
        with pytest.raises(SchemaRegistryError) as caught:
            SchemaRegistryClient({"url": url}).get_schema(999_999)
        return caught.value

    error = await asyncio.to_thread(unknown_id)
    assert (error.http_status_code, error.error_code) == (404, 40403)
