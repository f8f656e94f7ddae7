"""A webhook answered 503 while the broker was frozen, whose record arrived once it woke: the
sender's retry is answered with the first copy's event id and produces nothing (`api.settlement`;
before, the claim was released at the 503 and the retry wrote a second copy, which the chaos
run's broker restart showed as windows counting three events twice).

The broker is frozen with SIGSTOP (`scripts.chaos_faults.frozen_broker`), so this needs the
stack this clone started, as the chaos tests do; on anyone else's broker it fails and says so.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from api.app import create_app
from api.families import event_id_for
from scripts.chaos_faults import frozen_broker
from streams.settings import Settings
from tests.integration.api.support import decoded, order_webhook, orders_records, post_order

DELIVERY_TIMEOUT_S = 2.0
# How long the retries may go on being told "still being delivered" (a bound, not a timing).
RETRY_FOR_S = 60.0


async def _retry_until_settled(
    client: TestClient[Any, Any], settings: Settings, body: dict[str, Any], webhook_id: str
) -> Any:
    """The sender retrying a 503 as upstream systems do, until it gets an answer that is not."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + RETRY_FOR_S
    while True:
        response = await post_order(client, settings, body, webhook_id=webhook_id)
        if response.status != 503 or loop.time() > deadline:
            return response
        await asyncio.sleep(0.5)


async def test_a_503d_webhook_whose_record_arrived_later_is_not_produced_again(
    aiohttp_client: AiohttpClient, settings: Settings, api_headers: dict[str, str]
) -> None:
    kafka = settings.kafka.model_copy(update={"delivery_timeout_s": DELIVERY_TIMEOUT_S})
    webhook = settings.webhook.model_copy(update={"dedupe_wait_s": 1.0})
    short = settings.model_copy(update={"kafka": kafka, "webhook": webhook})
    client = await aiohttp_client(create_app(short), headers=api_headers)
    warm_up = await post_order(client, short)  # connected, the topic's metadata known
    assert warm_up.status == 202

    body = order_webhook()
    with frozen_broker():
        unconfirmed = await post_order(client, short, body, webhook_id="msg_late")
    assert unconfirmed.status == 503

    retried = await _retry_until_settled(client, short, body, "msg_late")
    assert retried.status == 200, await retried.text()
    answer = await retried.json()
    assert answer["status"] == "duplicate"
    event_id = event_id_for("orders", "msg_late")
    assert answer["event_id"] == str(event_id)
    copies = [r for r in await orders_records(short) if decoded(r).event_id == event_id]
    assert len(copies) == 1
    metrics = await (await client.get("/metrics")).text()
    assert 'tributary_api_unconfirmed_sends_total{outcome="recorded"} 1.0' in metrics
