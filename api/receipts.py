"""`POST /v1/webhooks/providers/{provider}`: signed, batched delivery receipts in, records out.

The same checks as the family webhooks (`api.webhooks`), cheapest first, with one secret for all
providers, or the provider's own signature; each provider's body is read in its own format. How
each provider signs and shapes its receipts is that provider's business, beside its sending
(`streams.providers.sendgrid`, `.twilio`, `.meta`, listed in `streams.providers.webhooks`); this
module only wires them to HTTP. Each receipt becomes one `NotificationReceiptEvent` keyed by
notification id, so it lands on the partition where `track_deliveries` keeps that notification.
The answer is 202 only once Kafka acknowledged every record of the request; a repeated webhook id
answers 200. A request with nothing we track (engagement a provider reports that is no delivery
state, messages not sent by us) is 202 too, with `receipts: 0`: providers resend what is refused.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from aiohttp import web

from api.access import signed_webhook
from api.delivery import Delivered, EventEncoder, OutboundRecord, deliver_all_once
from api.errors import NotFoundError
from api.families import event_id_for
from api.keys import CATALOG, CODEC, DELIVERY, METRICS, SETTINGS
from api.request_ids import request_id_header
from api.webhooks import read_body, require_media_type, verified_webhook_id
from schemas.notifications import NotificationReceipt, NotificationReceiptEvent
from schemas.provider_receipts import ProviderReceiptItem
from streams.errors import InvalidSignatureError
from streams.name_ids import URL_IDS
from streams.providers import meta, sendgrid, twilio
from streams.providers.receipts import ReceiptRequest
from streams.providers.webhooks import FORMATS, NATIVE_HEADERS

SECRET_NAME = "providers"  # noqa: S105 - the name of a setting, not a secret
PATH = "/v1/webhooks/providers/{provider}"
EVENT_TYPE = "notification.receipt-received"
# `tributary_api_receipts_rejected_total{reason}`: a notification id outside the signature.
UNSIGNED_ID = "unsigned-notification-id"


def receipt_event_id(provider: str, provider_message_id: str, state: str) -> UUID:
    """Deterministic: a provider re-sending a receipt (any webhook id) yields the same event."""
    return URL_IDS.uuid(f"tributary:receipt:{provider}:{provider_message_id}:{state}")


def receipt_event(
    provider: str, item: ProviderReceiptItem, webhook_id: str, ingested_at: datetime
) -> NotificationReceiptEvent:
    event_id = receipt_event_id(provider, item.provider_message_id, item.state)
    payload = NotificationReceipt(
        notification_id=item.notification_id,
        provider=provider,
        provider_message_id=item.provider_message_id,
        state=item.state,
        channel=item.channel,
        reason=item.reason,
    )
    return NotificationReceiptEvent(
        event_id=event_id,
        event_type=EVENT_TYPE,
        occurred_at=item.occurred_at,
        ingested_at=ingested_at,
        source=f"provider:{provider}",
        correlation_id=item.notification_id,
        causation_id=webhook_id,
        payload=payload,
    )


def receipt_records(
    provider: str,
    receipts: Sequence[ProviderReceiptItem],
    webhook_id: str,
    topic: str,
    ingested_at: datetime,
    encoder: EventEncoder,
) -> list[OutboundRecord]:
    records: list[OutboundRecord] = []
    for item in receipts:
        event = receipt_event(provider, item, webhook_id, ingested_at)
        headers = (
            ("event_id", str(event.event_id).encode()),
            ("event_type", EVENT_TYPE.encode()),
            ("source", event.source.encode()),
        )
        key = item.notification_id.encode()
        records.append(OutboundRecord(event.event_id, topic, key, encoder.encode(event), headers))
    return records


def _answer(delivered: Delivered, count: int) -> web.Response:
    body: dict[str, Any] = {
        "event_id": str(delivered.receipt.event_id),
        "status": "duplicate" if delivered.duplicate else "accepted",
        "topic": delivered.receipt.position.topic,
    }
    if not delivered.duplicate:
        body["receipts"] = count
    return web.json_response(body, status=200 if delivered.duplicate else 202)


def receipt_webhook_id(request: web.Request, provider: str, body: bytes) -> str:
    """Verified: the provider's own signature when the request carries one, else Standard
    Webhooks (the sandbox, relays). The id keys the duplicate ledger."""
    native = NATIVE_HEADERS.get(provider)
    if native is None or native not in request.headers:
        return verified_webhook_id(request, SECRET_NAME, body)
    settings = request.app[SETTINGS]
    providers = settings.providers
    if provider == "twilio" and providers.twilio_auth_token is not None:
        base = settings.api.public_url
        url = f"{base.rstrip('/')}{request.path_qs}" if base else str(request.url)
        token = providers.twilio_auth_token.get_secret_value()
        return twilio.verify(token, url, request.headers, body)
    if provider == "sendgrid" and providers.sendgrid_webhook_public_key:
        return sendgrid.verify(
            providers.sendgrid_webhook_public_key,
            request.headers,
            body,
            now_s=time.time(),
            tolerance_s=settings.webhook.tolerance_s,
        )
    if provider == "meta" and providers.meta_app_secret is not None:
        return meta.verify(providers.meta_app_secret.get_secret_value(), request.headers, body)
    raise InvalidSignatureError(f"no {provider} webhook key is configured", native)


def signed_query(request: web.Request, provider: str) -> Mapping[str, str]:
    """The query, when the signature covered it: only Twilio's own signature (over the URL Twilio
    called) does. A Standard Webhooks signature covers the body alone, so a query there could
    point a validly signed receipt at another notification: it is not read."""
    native = NATIVE_HEADERS.get(provider)
    covered = provider == "twilio" and native is not None and native in request.headers
    return request.query if covered else {}


@signed_webhook
async def ingest_receipts(request: web.Request) -> web.StreamResponse:
    provider = request.match_info["provider"]
    found = FORMATS.get(provider)
    if found is None:
        raise NotFoundError(f"provider {provider!r}")
    app = request.app
    body = await read_body(request, app[SETTINGS].api.max_body_bytes)
    webhook_id = receipt_webhook_id(request, provider, body)
    require_media_type(request, found.media_type)
    now = datetime.now(UTC)
    query = signed_query(request, provider)
    if not query and "notification_id" in request.query:
        app[METRICS].receipts_rejected.labels(UNSIGNED_ID).inc()
    receipts = found.parse(ReceiptRequest(body, query, now))
    if not receipts:
        return web.json_response({"status": "accepted", "receipts": 0}, status=202)
    codec = await app[CODEC].codec()
    topic = app[CATALOG].for_topic("notifications.receipts").name
    request_id = request_id_header(request)
    records = [
        record.with_header(request_id)
        for record in receipt_records(provider, receipts, webhook_id, topic, now, codec)
    ]
    source = f"{SECRET_NAME}:{provider}"
    batch_id = event_id_for(source, webhook_id)
    delivered = await deliver_all_once(app[DELIVERY], source, webhook_id, records, batch_id)
    if delivered.duplicate:
        app[METRICS].duplicates.labels(SECRET_NAME).inc()
    else:
        app[METRICS].events_produced.labels(topic).inc(len(records))
    return _answer(delivered, len(records))


def routes() -> list[web.RouteDef]:
    return [web.post(PATH, ingest_receipts)]
