"""X-Request-Id: honoured or made, returned, in every problem body and in the webhook's record."""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp.test_utils import TestClient

from streams.settings import Settings
from tests.integration.api.support import ORDERS_PATH, order_webhook, orders_records, post_order

Client = TestClient[Any, Any]


async def test_a_callers_request_id_is_returned_and_carried_by_the_webhooks_record(
    client: Client, settings: Settings
) -> None:
    client.session.headers["X-Request-Id"] = "req-from-upstream-7"
    try:
        response = await post_order(client, settings, order_webhook())
    finally:
        del client.session.headers["X-Request-Id"]

    assert response.status == 202
    assert response.headers["X-Request-Id"] == "req-from-upstream-7"
    [record] = await orders_records(settings)
    assert dict(record.headers)["request_id"] == b"req-from-upstream-7"


async def test_without_one_the_api_makes_a_request_id_and_puts_it_in_the_problem(
    client: Client,
) -> None:
    response = await client.post(ORDERS_PATH, data=b"{}", headers={"Content-Type": "text/plain"})

    assert response.status == 401
    made = response.headers["X-Request-Id"]
    assert uuid.UUID(made)
    problem = await response.json()
    assert problem["request_id"] == made


async def test_an_unusable_request_id_is_replaced_and_every_problem_names_the_one_used(
    client: Client,
) -> None:
    for path in ("/no/such/route", "/v1/orders/" + "x" * 300):
        response = await client.get(path, headers={"X-Request-Id": "has space"})
        assert response.status >= 400
        used = response.headers["X-Request-Id"]
        assert used != "has space"
        assert (await response.json())["request_id"] == used
