"""Every inbound family through the one ingest handler, against the real Kafka and Redis."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from api.families import BY_NAME, event_id_for
from schemas import examples
from streams.kafka.wire import decode
from streams.settings import Settings
from tests.integration.api.support import post_webhook, signed, topic_records
from tests.integration.kafka_io import topic_catalog

Client = TestClient[Any, Any]
# The record keys of `schemas.examples`' bodies: `user.id`, `auth.user_id`, `order.id`.
KEYS = {"users": b"usr_42", "auth": b"usr_42", "orders": b"ord_1001"}


async def _problem_fields(response: ClientResponse, path: str) -> set[str]:
    assert response.status == 422, await response.text()
    assert response.content_type == "application/problem+json"
    problem = await response.json(content_type=None)
    assert problem["instance"] == path
    assert all(error["message"] for error in problem["errors"])
    return {error["field"] for error in problem["errors"]}


@pytest.mark.parametrize("family", ["users", "auth", "orders"])
async def test_every_webhook_type_of_a_family_lands_on_its_topic_keyed_and_decodable(
    client: Client, settings: Settings, family: str
) -> None:
    contract = BY_NAME[family].contract
    event_types = BY_NAME[family].webhook.event_types
    answers: dict[str, dict[str, Any]] = {}
    for event_type in event_types:
        body = examples.webhook_body(event_type)
        response = await post_webhook(client, settings, family, body, f"msg_{event_type}")
        assert response.status == 202, await response.text()
        answers[str(event_id_for(family, f"msg_{event_type}"))] = await response.json()

    records = await topic_records(settings, contract.topic)
    assert len(records) == len(event_types)
    topic = topic_catalog(settings).for_topic(contract.topic).name
    for record in records:
        event: Any = decode(record.value, contract.event_model)
        answer = answers[str(event.event_id)]
        assert (record.topic, record.partition, record.offset) == (
            topic,
            answer["partition"],
            answer["offset"],
        )
        assert record.key == KEYS[family]
        assert dict(record.headers)["event_type"] == event.event_type.encode()
        expected: Any = examples.event(event.event_type)
        assert event.source == f"webhook:{family}"
        assert event.correlation_id == "corr-1"
        assert event.causation_id is None
        assert event.occurred_at == expected.occurred_at
        assert event.payload == expected.payload


async def test_the_users_contract_violations_are_named_as_the_body_names_them(
    client: Client, settings: Settings
) -> None:
    body = examples.webhook_body("user.created")
    body["user"] |= {"id": "not an id!", "email": "nope", "time_zone": "Mars/Olympus"}
    del body["user"]["locale"]
    response = await post_webhook(client, settings, "users", body)
    fields = await _problem_fields(response, "/v1/webhooks/users")
    assert fields == {"user.id", "user.email", "user.time_zone", "user.locale"}
    assert await topic_records(settings, "users.events") == []


async def test_the_auth_contract_violations_are_named_and_verdicts_are_refused(
    client: Client, settings: Settings
) -> None:
    failed = examples.webhook_body("auth.login-failed")
    failed["auth"] |= {"ip": "999.1.1.1"}
    del failed["auth"]["user_id"]
    response = await post_webhook(client, settings, "auth", failed)
    assert await _problem_fields(response, "/v1/webhooks/auth") == {"auth.ip", "auth.user_id"}

    # The security agent's own verdict type: nobody outside may raise (or forge) it.
    verdict = {
        "type": "auth.suspicious-login",
        "occurred_at": examples.OCCURRED_AT,
        "auth": examples.PAYLOADS["auth.suspicious-login"],
    }
    response = await post_webhook(client, settings, "auth", verdict)
    assert "type" in await _problem_fields(response, "/v1/webhooks/auth")
    assert await topic_records(settings, "auth.events") == []


async def test_each_family_has_its_own_secret(client: Client, settings: Settings) -> None:
    raw = json.dumps(examples.webhook_body("user.verified")).encode()
    signed_for_orders = signed(settings, raw, "msg_crossed", family="orders")
    response = await client.post("/v1/webhooks/users", data=raw, headers=signed_for_orders)
    assert response.status == 401
    assert (await response.json(content_type=None))["header"] == "webhook-signature"
    assert await topic_records(settings, "users.events") == []


async def test_families_that_do_not_arrive_by_webhook_have_no_endpoint(
    client: Client, settings: Settings
) -> None:
    response = await client.post("/v1/webhooks/notification-requests", data=b"{}")
    assert response.status == 404
