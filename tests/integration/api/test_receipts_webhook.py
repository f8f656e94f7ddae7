"""Provider receipts through the real API into the real Kafka (and Redis for the ledger)."""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import urlencode

from aiohttp.test_utils import TestClient
from pydantic import SecretStr

from api.app import create_app
from schemas.notifications import NotificationReceiptEvent
from streams.kafka.wire import decode
from streams.providers.meta import SIGNATURE_HEADER as META_SIGNATURE
from streams.providers.meta import digest as meta_digest
from streams.providers.receipts import FORM
from streams.providers.twilio import digest as twilio_digest
from streams.settings import Settings
from tests.integration.api.support import signed, topic_records

# Our plain shape (for providers with no receipt webhook of their own); the native formats below.
PATH = "/v1/webhooks/providers/fcm"


def receipts(*states: str) -> dict[str, Any]:
    run = uuid.uuid4().hex[:8]
    return {
        "receipts": [
            {
                "notification_id": f"n-{run}-{n}",
                "provider_message_id": f"m-{run}-{n}",
                "state": state,
                "occurred_at": "2026-11-22T09:00:00Z",
                "channel": "push",
            }
            for n, state in enumerate(states)
        ]
    }


async def post(
    client: TestClient[Any, Any],
    settings: Settings,
    body: dict[str, Any],
    path: str = PATH,
    webhook_id: str | None = None,
) -> Any:
    raw = json.dumps(body).encode()
    headers = signed(settings, raw, webhook_id, family="providers")
    return await client.post(path, data=raw, headers=headers)


async def test_signed_receipts_are_accepted_once_all_are_on_the_receipts_topic(
    client: TestClient[Any, Any], settings: Settings
) -> None:
    body = receipts("delivered", "bounced", "complained")
    response = await post(client, settings, body, webhook_id="wh-batch-1")
    assert response.status == 202, await response.text()
    assert (await response.json())["receipts"] == 3

    records = await topic_records(settings, "notifications.receipts")
    events = {r.key: decode(r.value, NotificationReceiptEvent) for r in records}
    sent = {item["notification_id"].encode(): item for item in body["receipts"]}
    assert set(events) == set(sent)
    for key, event in events.items():
        assert event.payload.state == sent[key]["state"]
        assert event.payload.provider == "fcm"
        assert event.payload.provider_message_id == sent[key]["provider_message_id"]

    again = await post(client, settings, body, webhook_id="wh-batch-1")
    assert again.status == 200
    assert (await again.json())["status"] == "duplicate"
    assert len(await topic_records(settings, "notifications.receipts")) == 3


async def test_a_bad_signature_is_401_and_produces_nothing(
    client: TestClient[Any, Any], settings: Settings
) -> None:
    raw = json.dumps(receipts("delivered")).encode()
    headers = signed(settings, raw, family="providers") | {"webhook-signature": "v1,AAAA"}
    response = await client.post(PATH, data=raw, headers=headers)
    assert response.status == 401
    assert response.content_type == "application/problem+json"
    assert await topic_records(settings, "notifications.receipts") == []


async def test_a_bad_field_is_422_naming_the_receipt_and_field(
    client: TestClient[Any, Any], settings: Settings
) -> None:
    body = receipts("delivered", "delivered", "delivered", "delivered")
    body["receipts"][3]["state"] = "evaporated"
    response = await post(client, settings, body)
    assert response.status == 422
    problem = await response.json()
    assert [e["field"] for e in problem["errors"]] == ["receipts[3].state"]
    assert await topic_records(settings, "notifications.receipts") == []


async def test_limits_and_unknown_providers(
    client: TestClient[Any, Any], settings: Settings
) -> None:
    empty = await post(client, settings, {"receipts": []})
    assert empty.status == 422
    assert [e["field"] for e in (await empty.json())["errors"]] == ["receipts"]
    too_many = await post(client, settings, receipts(*["delivered"] * 501))
    assert too_many.status == 422
    unknown = await post(client, settings, receipts("delivered"), path="/v1/webhooks/providers/x")
    assert unknown.status == 404


async def test_native_sendgrid_events_and_twilio_callbacks_become_receipts(
    client: TestClient[Any, Any], settings: Settings
) -> None:
    run = uuid.uuid4().hex[:8]
    events = [
        {"event": "processed", "timestamp": 1795300000, "sg_message_id": f"sg-{run}.f.0"},
        {
            "event": "delivered",
            "timestamp": 1795300001,
            "sg_message_id": f"sg-{run}.filterdrecv.0",
            "notification_id": f"n-{run}-email",
        },
    ]
    raw = json.dumps(events).encode()
    headers = signed(settings, raw, family="providers")
    sendgrid = await client.post("/v1/webhooks/providers/sendgrid", data=raw, headers=headers)
    assert sendgrid.status == 202, await sendgrid.text()
    assert (await sendgrid.json())["receipts"] == 1

    # Relayed with Standard Webhooks (body only): the id rides in the signed form.
    form = (
        f"MessageSid=SM{run}&MessageStatus=undelivered&ErrorCode=30003&notification_id=n-{run}-sms"
    )
    headers = signed(settings, form.encode(), family="providers", content_type=FORM)
    path = "/v1/webhooks/providers/twilio"
    twilio = await client.post(path, data=form.encode(), headers=headers)
    assert twilio.status == 202, await twilio.text()
    assert (await twilio.json())["receipts"] == 1

    records = await topic_records(settings, "notifications.receipts")
    found = sorted(
        (r.key, e.payload.provider, e.payload.provider_message_id, e.payload.state)
        for r in records
        for e in [decode(r.value, NotificationReceiptEvent)]
    )
    assert found == [
        (f"n-{run}-email".encode(), "sendgrid", f"sg-{run}", "delivered"),
        (f"n-{run}-sms".encode(), "twilio", f"SM{run}", "bounced"),
    ]

    # A form where JSON is due (and the reverse) is a 415 naming what was expected.
    headers = signed(settings, form.encode(), family="providers", content_type=FORM)
    wrong = await client.post(
        "/v1/webhooks/providers/sendgrid", data=form.encode(), headers=headers
    )
    assert wrong.status == 415
    assert "application/json" in (await wrong.json())["detail"]


async def test_a_receipt_signed_the_providers_own_way_is_accepted_when_its_key_is_set(
    aiohttp_client: Any, settings: Settings
) -> None:
    secret = "meta-app-secret"
    providers = settings.providers.model_copy(update={"meta_app_secret": SecretStr(secret)})
    client = await aiohttp_client(create_app(settings.model_copy(update={"providers": providers})))
    run = uuid.uuid4().hex[:8]
    status = {
        "id": f"wamid.{run}",
        "status": "delivered",
        "timestamp": "1795300001",
        "biz_opaque_callback_data": f"n-{run}",
    }
    value = {"messaging_product": "whatsapp", "metadata": {}, "statuses": [status]}
    hook = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "waba", "changes": [{"field": "messages", "value": value}]}],
    }
    raw = json.dumps(hook).encode()
    headers = {"Content-Type": "application/json", META_SIGNATURE: meta_digest(secret, raw)}
    accepted = await client.post("/v1/webhooks/providers/meta", data=raw, headers=headers)
    assert accepted.status == 202, await accepted.text()
    again = await client.post("/v1/webhooks/providers/meta", data=raw, headers=headers)
    assert (again.status, (await again.json())["status"]) == (200, "duplicate")
    forged = {**headers, META_SIGNATURE: meta_digest("guess", raw)}
    refused = await client.post("/v1/webhooks/providers/meta", data=raw, headers=forged)
    assert refused.status == 401
    assert (await refused.json())["header"] == META_SIGNATURE

    [record] = await topic_records(settings, "notifications.receipts")
    event = decode(record.value, NotificationReceiptEvent)
    assert (record.key, event.payload.provider, event.payload.state) == (
        f"n-{run}".encode(),
        "meta",
        "delivered",
    )
    # Without a configured key, a native signature is not enough.
    plain = await aiohttp_client(create_app(settings))
    unconfigured = await plain.post("/v1/webhooks/providers/meta", data=raw, headers=headers)
    assert unconfigured.status == 401


async def _twilio_signed_with(
    client: TestClient[Any, Any], token: str, run: str
) -> tuple[str, bytes, dict[str, str]]:
    path = f"/v1/webhooks/providers/twilio?notification_id=n-{run}"
    form = {"MessageSid": f"SM{run}", "MessageStatus": "delivered"}
    signature = twilio_digest(token, str(client.make_url(path)), form)
    headers = {"X-Twilio-Signature": signature, "Content-Type": FORM}
    return path, urlencode(form).encode(), headers


async def test_a_twilio_receipt_signed_with_the_old_default_token_is_refused(
    aiohttp_client: Any, settings: Settings
) -> None:
    """`dev-twilio-token` was the auth token's default: anyone could mark any message delivered.
    Unset, Twilio's own signature is refused; set, only the real token's signature passes."""
    run = uuid.uuid4().hex[:8]
    no_token = settings.providers.model_copy(update={"twilio_auth_token": None})
    client = await aiohttp_client(create_app(settings.model_copy(update={"providers": no_token})))
    path, body, headers = await _twilio_signed_with(client, "dev-twilio-token", run)
    refused = await client.post(path, data=body, headers=headers)
    assert refused.status == 401, await refused.text()
    assert (await refused.json())["header"] == "X-Twilio-Signature"

    own = await aiohttp_client(create_app(settings))
    path, body, headers = await _twilio_signed_with(own, "dev-twilio-token", run)
    assert (await own.post(path, data=body, headers=headers)).status == 401
    token = settings.providers.twilio_auth_token
    assert token is not None
    path, body, headers = await _twilio_signed_with(own, token.get_secret_value(), run)
    accepted = await own.post(path, data=body, headers=headers)
    assert accepted.status == 202, await accepted.text()
    assert await topic_records(settings, "notifications.receipts") != []


async def test_a_notification_id_outside_the_signature_is_not_read(
    client: TestClient[Any, Any], settings: Settings
) -> None:
    """Standard Webhooks signs the body only: a validly signed Twilio receipt must not be pointed
    at another notification through the (unsigned) query."""
    run = uuid.uuid4().hex[:8]
    form = f"MessageSid=SM{run}&MessageStatus=delivered".encode()
    headers = signed(settings, form, family="providers", content_type=FORM)
    path = f"/v1/webhooks/providers/twilio?notification_id=n-{run}-victim"
    response = await client.post(path, data=form, headers=headers)
    assert response.status == 202, await response.text()
    assert (await response.json())["receipts"] == 0
    assert await topic_records(settings, "notifications.receipts") == []
    metrics = await (await client.get("/metrics")).text()
    rejected = 'tributary_api_receipts_rejected_total{reason="unsigned-notification-id"} 1.0'
    assert rejected in metrics
