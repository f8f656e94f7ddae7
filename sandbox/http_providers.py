"""The HTTP side of the sandbox: SendGrid, Twilio, FCM and Meta Cloud send endpoints answering as
those providers do (status codes, id fields, error bodies), plus the test/ops endpoints under
`/_sandbox/`. Handlers stay thin: parse (`provider_requests`), then `Sandbox.accept`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable, Sequence

from aiohttp import web

from sandbox.idempotency import idempotency_key
from sandbox.provider_requests import (
    InvalidRequest,
    Send,
    basic_user,
    bearer_present,
    parse_fcm,
    parse_meta,
    parse_sendgrid,
    parse_twilio,
)
from sandbox.service import PROVIDER_CHANNELS, Outage, Sandbox

SANDBOX = web.AppKey("sandbox", Sandbox)
MAX_BODY_BYTES = 1024 * 1024
RECENT_MESSAGES = 100

# (status, message, field) -> the provider's error response
ErrorBody = Callable[[int, str, str | None], web.Response]


def create_http_app(sandbox: Sandbox) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[SANDBOX] = sandbox
    app.router.add_post("/v3/mail/send", sendgrid_send)
    app.router.add_post("/2010-04-01/Accounts/{account_sid}/Messages.json", twilio_send)
    app.router.add_post("/v1/projects/{project}/messages:send", fcm_send)
    app.router.add_post(r"/{version:v\d+\.\d+}/{phone_number_id}/messages", meta_send)
    app.router.add_get("/_sandbox/health", health)
    app.router.add_get("/_sandbox/messages", messages)
    app.router.add_post("/_sandbox/outage/{provider}", outage_start)
    app.router.add_delete("/_sandbox/outage/{provider}", outage_end)
    return app


# --- provider error bodies -------------------------------------------------------------------


def sendgrid_error(status: int, message: str, field: str | None) -> web.Response:
    return web.json_response(
        {"errors": [{"message": message, "field": field, "help": None}]}, status=status
    )


_TWILIO_CODES = {400: 21211, 401: 20003, 429: 20429, 500: 20500, 503: 20503}


def twilio_error(status: int, message: str, field: str | None) -> web.Response:
    code = _TWILIO_CODES.get(status, 20001)
    if status == 400 and field != "To":
        code = 21602 if field == "Body" else 21603 if field == "From" else 21609
    return web.json_response(
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
        status=status,
    )


_GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
}


def fcm_error(status: int, message: str, field: str | None) -> web.Response:
    error: dict[str, object] = {
        "code": status,
        "message": message,
        "status": _GOOGLE_STATUS.get(status, "UNAVAILABLE"),
    }
    if field is not None:
        error["details"] = [
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": field, "description": message}],
            }
        ]
    return web.json_response({"error": error}, status=status)


_META_CODES = {400: 100, 401: 190, 429: 130429, 500: 1, 503: 2}


def meta_error(status: int, message: str, field: str | None) -> web.Response:
    error: dict[str, object] = {
        "message": message,
        "type": "OAuthException",
        "code": _META_CODES.get(status, 1),
        "fbtrace_id": "sandbox",
    }
    if field is not None:
        error["error_data"] = {"details": f"{field}: {message}"}
    return web.json_response({"error": error}, status=status)


# --- shared steps ----------------------------------------------------------------------------


async def _json(request: web.Request) -> object:
    try:
        return json.loads(await request.read())
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest("the body is not valid JSON", "body") from exc


async def _send(
    request: web.Request,
    provider: str,
    error: ErrorBody,
    authorized: bool,
    parse: Callable[[], Awaitable[Sequence[Send]]],
    message_id: str,
    success: Callable[[], web.Response],
) -> web.Response:
    sandbox = request.app[SANDBOX]
    outage = sandbox.outages.get(provider)
    if outage is not None:
        answer = error(outage.status, f"{provider} is unavailable (sandbox outage)", None)
        if outage.retry_after_s is not None:
            answer.headers["Retry-After"] = str(outage.retry_after_s)
        return answer
    if not authorized:
        return error(401, "authentication required", None)
    key = idempotency_key(request)
    replayed = sandbox.answers.replay(provider, key)
    if replayed is not None:
        return replayed
    try:
        sends = await parse()
    except InvalidRequest as exc:
        return error(400, exc.message, exc.field)
    if not await sandbox.accept_all(provider, sends, message_id):
        return error(500, "internal error (sandbox: a *fail* recipient)", None)
    answer = success()
    sandbox.answers.remember(provider, key, answer)
    return answer


# --- provider endpoints ----------------------------------------------------------------------


async def sendgrid_send(request: web.Request) -> web.Response:
    message_id = uuid.uuid4().hex[:22]

    async def parse() -> Sequence[Send]:
        return parse_sendgrid(await _json(request))

    return await _send(
        request,
        "sendgrid",
        sendgrid_error,
        bearer_present(request.headers.get("Authorization")),
        parse,
        message_id,
        lambda: web.Response(status=202, headers={"X-Message-Id": message_id}),
    )


async def twilio_send(request: web.Request) -> web.Response:
    account_sid = request.match_info["account_sid"]
    sid = f"SM{uuid.uuid4().hex}"

    async def parse() -> Sequence[Send]:
        form = await request.post()
        return [parse_twilio({key: str(value) for key, value in form.items()})]

    return await _send(
        request,
        "twilio",
        twilio_error,
        basic_user(request.headers.get("Authorization")) == account_sid,
        parse,
        sid,
        lambda: web.json_response(
            {"sid": sid, "account_sid": account_sid, "status": "queued"}, status=201
        ),
    )


async def fcm_send(request: web.Request) -> web.Response:
    name = f"projects/{request.match_info['project']}/messages/0:{uuid.uuid4().hex}"

    async def parse() -> Sequence[Send]:
        return [parse_fcm(await _json(request))]

    return await _send(
        request,
        "fcm",
        fcm_error,
        bearer_present(request.headers.get("Authorization")),
        parse,
        name,
        lambda: web.json_response({"name": name}),
    )


async def meta_send(request: web.Request) -> web.Response:
    wamid = f"wamid.{uuid.uuid4().hex}"
    sends: list[Send] = []

    async def parse() -> Sequence[Send]:
        sends.append(parse_meta(await _json(request)))
        return sends

    def success() -> web.Response:
        to = sends[0].recipient
        return web.json_response(
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": to, "wa_id": to.lstrip("+")}],
                "messages": [{"id": wamid}],
            }
        )

    return await _send(
        request,
        "meta",
        meta_error,
        bearer_present(request.headers.get("Authorization")),
        parse,
        wamid,
        success,
    )


# --- test/ops endpoints ----------------------------------------------------------------------


async def health(request: web.Request) -> web.Response:
    return web.json_response(request.app[SANDBOX].health())


async def messages(request: web.Request) -> web.Response:
    mailbox = request.app[SANDBOX].mailbox
    notification_id = request.query.get("notification_id")
    if notification_id is not None:
        found = mailbox.for_notification(notification_id)
    else:
        found = mailbox.recent(RECENT_MESSAGES)
    return web.json_response({"messages": [message.to_json() for message in found]})


def _provider(request: web.Request) -> str:
    provider = request.match_info["provider"]
    if provider not in PROVIDER_CHANNELS:
        known = ", ".join(PROVIDER_CHANNELS)
        raise web.HTTPNotFound(text=f"unknown provider {provider!r}; known: {known}")
    return provider


async def outage_start(request: web.Request) -> web.Response:
    """`?status=429&retry_after_s=2` (both optional; status 429 or 5xx, default 503)."""
    provider = _provider(request)
    try:
        status = int(request.query.get("status", "503"))
        retry_after = request.query.get("retry_after_s")
        retry_after_s = int(retry_after) if retry_after is not None else None
    except ValueError as exc:
        raise web.HTTPBadRequest(text="status and retry_after_s must be integers") from exc
    if not (status == 429 or 500 <= status <= 599) or (retry_after_s or 0) < 0:
        raise web.HTTPBadRequest(text="status must be 429 or 5xx, retry_after_s >= 0")
    request.app[SANDBOX].outages[provider] = Outage(status, retry_after_s)
    return web.json_response(
        {"provider": provider, "outage": True, "status": status, "retry_after_s": retry_after_s}
    )


async def outage_end(request: web.Request) -> web.Response:
    provider = _provider(request)
    request.app[SANDBOX].outages.pop(provider, None)
    return web.json_response({"provider": provider, "outage": False})
