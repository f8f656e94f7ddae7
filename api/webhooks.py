"""`POST /v1/webhooks/{family}`: signed webhooks in, acknowledged Kafka records out.

One handler for every family of `api.families` (users, auth, orders), each with its own secret.

Checks run cheapest-first and each can only reject: size, signature, JSON, contract, then the
rate limit and the ledger (one Redis call) and the produce. So an unauthenticated sender never
reaches JSON parsing, and nothing unverified or invalid touches Redis or Kafka.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from aiohttp import web
from aiohttp.typedefs import Handler

from api.access import signed_webhook
from api.contracts import validate
from api.delivery import Delivered, deliver_claimed, outbound_record
from api.errors import PayloadTooLargeError, UnsupportedMediaTypeError, WebhookSecretMissingError
from api.families import FAMILIES, WebhookFamily
from api.keys import ADMISSION, CATALOG, CODEC, DELIVERY, METRICS, SETTINGS
from api.rate_limits import with_limit_headers
from api.request_ids import request_id_header
from api.signature import verify
from streams.providers.receipts import parse_json_object

_CHUNK_BYTES = 64 * 1024


async def read_body(request: web.Request, limit_bytes: int) -> bytes:
    """The body, refused as soon as it is known to exceed the limit (declared or actual)."""
    if request.content_length is not None and request.content_length > limit_bytes:
        raise PayloadTooLargeError(limit_bytes)
    body = bytearray()
    async for chunk in request.content.iter_chunked(_CHUNK_BYTES):
        body.extend(chunk)
        if len(body) > limit_bytes:
            raise PayloadTooLargeError(limit_bytes)
    return bytes(body)


JSON = "application/json"


def require_json(request: web.Request) -> None:
    require_media_type(request, JSON)


def require_media_type(request: web.Request, expected: str) -> None:
    """415 for a declared body of another type (`+json` counts as JSON); a missing
    Content-Type is tolerated, not guessed at."""
    if "Content-Type" not in request.headers:
        return
    content_type = request.content_type
    if content_type != expected and not (expected == JSON and content_type.endswith("+json")):
        raise UnsupportedMediaTypeError(content_type, expected)


def verified_webhook_id(request: web.Request, secret_name: str, body: bytes) -> str:
    """`secret_name` as `WebhookSettings.secret_for` knows it (a family name, or "providers")."""
    settings = request.app[SETTINGS]
    secret = settings.webhook.secret_for(secret_name)
    if secret is None:
        raise WebhookSecretMissingError(secret_name)
    return verify(
        secret.get_secret_value(),
        request.headers,
        body,
        now_s=time.time(),
        tolerance_s=settings.webhook.tolerance_s,
    )


def _answer(delivered: Delivered) -> web.Response:
    receipt = delivered.receipt
    body = {
        "event_id": str(receipt.event_id),
        "status": "duplicate" if delivered.duplicate else "accepted",
        "topic": receipt.position.topic,
        "partition": receipt.position.partition,
        "offset": receipt.position.offset,
    }
    return web.json_response(body, status=200 if delivered.duplicate else 202)


def ingest_handler(family: WebhookFamily) -> Handler:
    @signed_webhook
    async def ingest(request: web.Request) -> web.StreamResponse:
        app = request.app
        body = await read_body(request, app[SETTINGS].api.max_body_bytes)
        webhook_id = verified_webhook_id(request, family.name, body)
        require_json(request)
        payload = validate(family.body_model, parse_json_object(body))
        codec = await app[CODEC].codec()
        record = outbound_record(
            family, payload, webhook_id, app[CATALOG], datetime.now(UTC), codec
        ).with_header(request_id_header(request))
        # The rate limit and the ledger claim in one Redis call; the record is built first, so
        # that nothing between the claim and the send can fail and leave the claim standing.
        admitted = await app[ADMISSION].admit(family.name, webhook_id)
        delivered = await deliver_claimed(
            app[DELIVERY], admitted.outcome, webhook_id, [record], record.event_id
        )
        limit = admitted.decision
        if delivered.duplicate:
            app[METRICS].duplicates.labels(family.name).inc()
        else:
            app[METRICS].events_produced.labels(record.topic).inc()
        return with_limit_headers(_answer(delivered), limit)

    return ingest


def routes() -> list[web.RouteDef]:
    return [web.post(family.path, ingest_handler(family)) for family in FAMILIES]
