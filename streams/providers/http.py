"""The HTTP side shared by the HTTP providers: one session per process, and error translation.

Every HTTP provider answers in the same few ways that matter to us: 2xx accepted, 429 "later"
(with Retry-After), 5xx "later", any other 4xx "never". Translating them once here keeps each
adapter down to the shape of its request and of its success body.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import orjson

from streams.providers.base import OutboundMessage, PermanentSendError, RetriableSendError

# Longest provider error text kept in a reason (it ends up in a status event and a DLQ header).
MAX_REASON_CHARS = 200


def create_client_session(pool_size: int, timeout_s: float) -> aiohttp.ClientSession:
    """The worker's one session: a large pool, since a batch sends hundreds of messages at once.

    Must be created inside the running loop, and closed by its owner (the worker's service).
    """
    connector = aiohttp.TCPConnector(limit=pool_size, limit_per_host=pool_size, ttl_dns_cache=300)
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=timeout_s),
        # Responses are tiny JSON bodies; skipping cookie bookkeeping saves work per request.
        cookie_jar=aiohttp.DummyCookieJar(),
        raise_for_status=False,
        # Request bodies (an email's text and HTML) cost stdlib json about 29 µs, orjson 1.3.
        json_serialize=_json_text,
    )


def _json_text(body: Any) -> str:
    return orjson.dumps(body).decode()


def retry_after_s(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds: either delay-seconds or an HTTP date (RFC 9110 10.2.3)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdecimal():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


async def post(
    session: aiohttp.ClientSession,
    provider: str,
    url: str,
    *,
    headers: Mapping[str, str],
    json_body: Any = None,
    form: Mapping[str, str] | None = None,
) -> tuple[Mapping[str, str], Any]:
    """POST and return the response's headers and JSON body (None if it has none).

    Raises `RetriableSendError` for timeouts, connection errors, 429 and 5xx, and
    `PermanentSendError` for any other non-2xx answer, with the provider's own error text.
    """
    try:
        async with session.post(url, headers=headers, json=json_body, data=form) as response:
            text = await response.text()
            status = response.status
            if 200 <= status < 300:
                return response.headers, _json_or_none(text)
            reason = f"HTTP {status}: {_error_text(text)}"
            if status == 429:
                hint = retry_after_s(response.headers.get("Retry-After"))
                raise RetriableSendError(provider, reason, hint)
            if status >= 500:
                raise RetriableSendError(provider, reason)
            raise PermanentSendError(provider, reason)
    except TimeoutError as exc:
        raise RetriableSendError(provider, "timed out") from exc
    except aiohttp.ClientError as exc:
        raise RetriableSendError(provider, f"{type(exc).__name__}: {exc}") from exc


def _json_or_none(text: str) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _error_text(text: str) -> str:
    """The provider's error message if its body has a recognizable one, else the body."""
    body = _json_or_none(text)
    if isinstance(body, dict):
        for key in ("message", "error_message", "detail", "title"):
            value = body.get(key)
            if isinstance(value, str):
                return value[:MAX_REASON_CHARS]
        error = body.get("error") or body.get("errors")
        if isinstance(error, list) and error:
            error = error[0]
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])[:MAX_REASON_CHARS]
        if isinstance(error, str):
            return error[:MAX_REASON_CHARS]
    return " ".join(text.split())[:MAX_REASON_CHARS] or "(empty body)"


# A 2xx whose body lacks the id: the message was accepted, so it must not be sent again; the
# receipt still finds it by our notification id, which every request carries.
UNKNOWN_MESSAGE_ID = "unknown"


def message_id_or_unknown(value: object) -> str:
    """The provider's message id if its answer had a usable one, else `UNKNOWN_MESSAGE_ID`."""
    return value if isinstance(value, str) and value else UNKNOWN_MESSAGE_ID


def body_field(body: object, key: str) -> object:
    """`body[key]` if the answer was a JSON object, else None."""
    return body.get(key) if isinstance(body, dict) else None


class HttpSender:
    """What every HTTP adapter holds: the shared session, its endpoint and its credentials.

    A subclass builds its request and reads the provider's message id from the answer; posting
    and error translation are the same for all (`post`).
    """

    def __init__(
        self, provider: str, session: aiohttp.ClientSession, url: str, headers: Mapping[str, str]
    ) -> None:
        self._provider = provider
        self._session = session
        self._url = url
        self._headers = headers

    @property
    def provider(self) -> str:
        return self._provider

    async def close(self) -> None:
        """Nothing of its own: the session is the worker's, closed by its owner."""

    # The header a provider reads an idempotency key from (Twilio has its own name for it).
    idempotency_header = "Idempotency-Key"

    async def _post(
        self,
        message: OutboundMessage,
        *,
        json_body: Any = None,
        form: Mapping[str, str] | None = None,
    ) -> tuple[Mapping[str, str], Any]:
        """POST `message`'s request, with its idempotency key: a provider that honours keys
        answers a repeated attempt (a worker crashed before recording the send) without
        sending it again."""
        headers = self._headers
        if message.idempotency_key is not None:
            headers = {**headers, self.idempotency_header: message.idempotency_key}
        return await post(
            self._session,
            self._provider,
            self._url,
            headers=headers,
            json_body=json_body,
            form=form,
        )
