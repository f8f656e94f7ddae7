"""Delivery receipts, posted back to the ingest API as real providers do: late, batched, signed.

A send only queues its receipts (`ReceiptBatcher.add`, no I/O), so a slow or absent API never
slows the send path. One batcher per provider runs one poster loop: it waits until the oldest
receipt is `delay_s` old, posts up to `batch_max` due receipts in one signed request, and retries
that same request (same `webhook-id`, so the API's ledger drops a copy it already took) on 5xx, 429
and connection errors, with backoff. Clock, sleep and the poster are passed in, so batching and
retries are unit-tested without a network or real time.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import math
import time
import urllib.parse
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import aiohttp

from sandbox.outcomes import Channel
from streams.webhook_signature import signed_headers

log = logging.getLogger(__name__)

# Answers with a status, or None when the API could not be reached (refused, reset, timed out).
Post = Callable[[str, Sequence["Receipt"], str], Awaitable[int | None]]

BACKOFF_S = (0.2, 0.5, 1.0, 2.0, 5.0)
PENDING_MAX = 500_000
# The least time between two posts of one provider, unless the first was a full batch.
BATCH_INTERVAL_S = 0.1
POST_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class Receipt:
    notification_id: str
    provider_message_id: str
    # delivered | bounced | failed | opened | clicked | complained
    state: str
    occurred_at_s: float
    channel: Channel
    reason: str | None = None

    def to_json(self) -> dict[str, str]:
        occurred_at = datetime.fromtimestamp(self.occurred_at_s, UTC)
        body = {
            "notification_id": self.notification_id,
            "provider_message_id": self.provider_message_id,
            "state": self.state,
            "occurred_at": occurred_at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "channel": self.channel.value,
        }
        if self.reason is not None:
            body["reason"] = self.reason
        return body


def receipts_body(receipts: Sequence[Receipt]) -> bytes:
    """Our plain shape, for providers with no receipt webhook of their own (fcm, smtp)."""
    return _dumps({"receipts": [receipt.to_json() for receipt in receipts]})


def _dumps(document: object) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True)
class ReceiptPost:
    """One request as the provider would make it: its body, its type, and the query of the
    callback URL (Twilio posts to the `StatusCallback` the send named)."""

    content_type: str
    body: bytes
    query: str = ""


_SENDGRID_EVENTS = {
    "delivered": "delivered",
    "bounced": "bounce",
    "failed": "dropped",
    "complained": "spamreport",
    "opened": "open",
    "clicked": "click",
}
_TWILIO_STATUSES = {
    "delivered": ("delivered", None),
    "bounced": ("undelivered", "30003"),
    "failed": ("failed", "30008"),
    "opened": ("read", None),
}
_META_STATUSES = {"delivered": "delivered", "opened": "read", "bounced": "failed"}
_META_STATUSES |= {"failed": "failed"}
META_UNDELIVERABLE = 131026


def whole_seconds(at_s: float) -> int:
    """SendGrid and Meta report times in whole seconds. A real delivery lands seconds after its
    send, so the provider's second is never before the send; the sandbox delivers at once, so it
    rounds up (rounding down would put "delivered" before "sending" in the timeline, and make the
    benchmark's latency read low)."""
    return math.ceil(at_s)


def sendgrid_post(receipts: Sequence[Receipt]) -> ReceiptPost:
    events = []
    for receipt in receipts:
        event: dict[str, object] = {
            "event": _SENDGRID_EVENTS.get(receipt.state, receipt.state),
            "timestamp": whole_seconds(receipt.occurred_at_s),
            # SendGrid's own id: the send's X-Message-Id, then a dot and its filter's name.
            "sg_message_id": f"{receipt.provider_message_id}.sandbox-filter.0",
            "notification_id": receipt.notification_id,  # the send's custom_args, echoed
        }
        if receipt.reason is not None:
            event["reason"] = receipt.reason
        events.append(event)
    return ReceiptPost("application/json", _dumps(events))


def twilio_post(receipt: Receipt) -> ReceiptPost | None:
    found = _TWILIO_STATUSES.get(receipt.state)
    if found is None:  # SMS has no spam complaint
        return None
    status, error_code = found
    form = {"MessageSid": receipt.provider_message_id, "MessageStatus": status}
    if error_code is not None:
        form |= {"ErrorCode": error_code, "ErrorMessage": receipt.reason or "undelivered"}
    # Signed with Standard Webhooks, which covers the body only, the id rides in the form, not in
    # the callback URL's query as Twilio's would (the API reads a query only under Twilio's own
    # signature, which covers the URL).
    form["notification_id"] = receipt.notification_id
    body = urllib.parse.urlencode(form).encode()
    return ReceiptPost("application/x-www-form-urlencoded", body)


def meta_post(receipts: Sequence[Receipt]) -> ReceiptPost:
    statuses = []
    for receipt in receipts:
        state = _META_STATUSES.get(receipt.state)
        if state is None:  # WhatsApp reports no spam complaint
            continue
        status: dict[str, object] = {
            "id": receipt.provider_message_id,
            "status": state,
            "timestamp": str(whole_seconds(receipt.occurred_at_s)),
            "biz_opaque_callback_data": receipt.notification_id,
        }
        if state == "failed":
            title = receipt.reason or "Message undeliverable"
            status["errors"] = [{"code": META_UNDELIVERABLE, "title": title}]
        statuses.append(status)
    value = {"messaging_product": "whatsapp", "metadata": {}, "statuses": statuses}
    change = {"field": "messages", "value": value}
    hook = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "sandbox", "changes": [change]}],
    }
    return ReceiptPost("application/json", _dumps(hook))


def provider_posts(provider: str, receipts: Sequence[Receipt]) -> list[ReceiptPost]:
    """The requests a provider makes for a batch of receipts, in its own format: one for most,
    one per message for Twilio's status callbacks."""
    if provider == "sendgrid":
        return [sendgrid_post(receipts)]
    if provider == "meta":
        return [meta_post(receipts)]
    if provider == "twilio":
        return [post for receipt in receipts if (post := twilio_post(receipt)) is not None]
    return [ReceiptPost("application/json", receipts_body(receipts))]


class Verdict(enum.Enum):
    DONE = "done"
    RETRY = "retry"
    DROP = "drop"


def verdict_for(status: int | None) -> Verdict:
    """2xx (202, or 200 for a batch the API had already taken) is done; 429, 5xx and no answer
    are worth retrying; any other 4xx will not get better by resending the same body."""
    if status is None or status == 429 or status >= 500:
        return Verdict.RETRY
    if 200 <= status < 300:
        return Verdict.DONE
    return Verdict.DROP


@dataclass
class BatcherStats:
    posted_batches: int = 0
    posted_receipts: int = 0
    retries: int = 0
    dropped: int = 0
    # Receipts taken from the queue whose post has not succeeded yet (retrying, perhaps).
    in_flight: int = 0
    last_error: str | None = None


@dataclass
class ReceiptBatcher:
    provider: str
    post: Post
    delay_s: float
    batch_max: int
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    backoff_s: Sequence[float] = BACKOFF_S
    interval_s: float = BATCH_INTERVAL_S
    pending_max: int = PENDING_MAX
    stats: BatcherStats = field(default_factory=BatcherStats)
    # (due time, receipt), oldest first: one delay for all, so due times never decrease.
    _queue: deque[tuple[float, Receipt]] = field(default_factory=deque)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def pending(self) -> int:
        return len(self._queue)

    def add(self, receipt: Receipt) -> None:
        """Queue a receipt to be posted `delay_s` from now. Never blocks."""
        if len(self._queue) >= self.pending_max:
            self.stats.dropped += 1
            return
        self._queue.append((self.clock() + self.delay_s, receipt))
        self._wake.set()

    def take_due(self) -> list[Receipt]:
        now_s = self.clock()
        batch: list[Receipt] = []
        queue = self._queue
        while queue and queue[0][0] <= now_s and len(batch) < self.batch_max:
            batch.append(queue.popleft()[1])
        return batch

    def next_due_in_s(self) -> float | None:
        if not self._queue:
            return None
        return max(0.0, self._queue[0][0] - self.clock())

    async def deliver(self, batch: Sequence[Receipt]) -> Verdict:
        """Post one batch until the API takes it (or refuses it for good)."""
        webhook_id = f"msg_{uuid.uuid4().hex}"
        attempt = 0
        self.stats.in_flight = len(batch)
        while True:
            status = await self.post(self.provider, batch, webhook_id)
            verdict = verdict_for(status)
            if verdict is not Verdict.RETRY:
                self.stats.in_flight = 0
            if verdict is Verdict.DONE:
                self.stats.posted_batches += 1
                self.stats.posted_receipts += len(batch)
                return verdict
            self.stats.last_error = f"HTTP {status}" if status is not None else "no answer"
            if verdict is Verdict.DROP:
                self.stats.dropped += len(batch)
                log.warning(
                    "%s receipts: the API refused a batch of %d (%s); dropped",
                    self.provider,
                    len(batch),
                    self.stats.last_error,
                )
                return verdict
            self.stats.retries += 1
            await self.sleep(self.backoff_s[min(attempt, len(self.backoff_s) - 1)])
            attempt += 1

    async def step(self) -> int:
        """Post one batch of due receipts, if there is one; how many were posted (or dropped)."""
        batch = self.take_due()
        if batch:
            await self.deliver(batch)
        return len(batch)

    async def run(self) -> None:
        """The provider's one poster: forever, post what is due, else sleep until it is.

        After a batch that was not full it waits `interval_s` before the next, as providers
        post receipts every so often rather than as they come: under load that makes batches of
        hundreds instead of a request per handful, and adds at most `interval_s` to a receipt.
        """
        while True:
            posted = await self.step()
            if posted >= self.batch_max:
                continue
            if posted:
                await self.sleep(self.interval_s)
                continue
            wait_s = self.next_due_in_s()
            if wait_s is None:
                self._wake.clear()
                await self._wake.wait()
            else:
                # Receipts added meanwhile are due no earlier than this one (one delay for all),
                # so sleeping until it is due never makes another one late.
                await self.sleep(wait_s)


@dataclass(frozen=True)
class HttpPoster:
    """Posts a batch to `{api_url}/v1/webhooks/providers/{provider}` in the provider's own
    format (`provider_posts`), each request signed with the providers' webhook secret.
    Connection errors and timeouts are answered as None (retry), never raised."""

    session: aiohttp.ClientSession
    api_url: str
    secret: str
    clock_s: Callable[[], float] = time.time

    async def __call__(
        self, provider: str, receipts: Sequence[Receipt], webhook_id: str
    ) -> int | None:
        """The worst answer of the batch's requests (a Twilio batch is a request per message;
        each keeps its own webhook id, so a retry of the batch is deduplicated request by
        request)."""
        worst: int | None = 200
        posts = provider_posts(provider, receipts)
        for n, post in enumerate(posts):
            request_id = webhook_id if len(posts) == 1 else f"{webhook_id}_{n}"
            status = await self._post(provider, post, request_id)
            if status is None or (worst is not None and status > worst):
                worst = status
        return worst

    async def _post(self, provider: str, post: ReceiptPost, webhook_id: str) -> int | None:
        headers = signed_headers(self.secret, webhook_id, int(self.clock_s()), post.body)
        headers["content-type"] = post.content_type
        url = f"{self.api_url.rstrip('/')}/v1/webhooks/providers/{provider}"
        if post.query:
            url = f"{url}?{post.query}"
        try:
            async with self.session.post(
                url,
                data=post.body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=POST_TIMEOUT_S),
            ) as response:
                await response.read()
                return response.status
        except (aiohttp.ClientError, TimeoutError):
            return None
