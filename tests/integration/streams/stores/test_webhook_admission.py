"""A webhook's rate limit and ledger claim in one script call, on the real Redis: the same
outcomes as the limiter's and the ledger's own calls made one after the other."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from streams.kafka.event_producer import RecordPosition
from streams.settings import RateLimitSettings, Settings, SourceRateLimit
from streams.stores.rate_limiter import RateLimitedError, RateLimiter
from streams.stores.redis_client import redis_client
from streams.stores.webhook_admission import WebhookAdmission
from streams.stores.webhook_ledger import Claim, Receipt, WebhookLedger

LIMIT = SourceRateLimit(rate_per_s=1 / 60, burst=2)


@pytest.fixture
async def ledger(settings: Settings) -> AsyncIterator[WebhookLedger]:
    ledger = WebhookLedger.from_settings(
        settings.redis,
        settings.webhook.model_copy(update={"dedupe_wait_s": 5.0}),
        topic_prefix=settings.topic_prefix,
        delivery_timeout_s=settings.kafka.delivery_timeout_s,
    )
    yield ledger
    await ledger.close()


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Redis]:
    """The limiter's client (the API's is the block store's), also to read keys back."""
    redis = redis_client(settings.redis)
    yield redis
    await redis.aclose()


def admission_of(
    ledger: WebhookLedger,
    client: Redis,
    settings: Settings,
    limits: RateLimitSettings | None = None,
) -> tuple[WebhookAdmission, RateLimiter]:
    limits = limits or RateLimitSettings(rate_per_s=LIMIT.rate_per_s, burst=LIMIT.burst)
    limiter = RateLimiter(client, limits, settings.topic_prefix)
    return WebhookAdmission(limiter, ledger), limiter


def _receipt() -> Receipt:
    return Receipt(uuid.uuid4(), RecordPosition("t-orders.events", 0, 3))


async def test_an_allowed_webhook_takes_a_slot_and_the_claim(
    ledger: WebhookLedger, client: Redis, settings: Settings
) -> None:
    admission, limiter = admission_of(ledger, client, settings)
    admitted = await admission.admit("orders", "msg_1")
    assert isinstance(admitted.outcome, Claim)
    assert admitted.decision is not None
    assert (admitted.decision.allowed, admitted.decision.remaining) == (True, 1)
    # The claim is the ledger's own: another copy waits for it and gets its receipt.
    receipt = _receipt()
    waiting = asyncio.create_task(ledger.claim("orders", "msg_1"))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    assert await ledger.complete(admitted.outcome, receipt)
    assert await waiting == receipt
    # And the slot is the limiter's own: one of the burst of two is left.
    after = await limiter.acquire("orders")
    assert after is not None
    assert (after.allowed, after.remaining) == (True, 0)


async def test_a_refused_webhook_raises_and_leaves_no_claim(
    ledger: WebhookLedger, client: Redis, settings: Settings
) -> None:
    admission, _ = admission_of(ledger, client, settings)
    for webhook_id in ("msg_1", "msg_2"):
        assert isinstance((await admission.admit("orders", webhook_id)).outcome, Claim)
    with pytest.raises(RateLimitedError) as refused:
        await admission.admit("orders", "msg_3")
    assert refused.value.source == "orders"
    assert refused.value.decision.limit == 2
    assert not refused.value.decision.allowed
    assert await client.get(ledger.key("orders", "msg_3")) is None
    # Other sources have their own slots.
    assert isinstance((await admission.admit("users", "msg_3")).outcome, Claim)


async def test_a_delivered_webhook_answers_its_receipt_and_still_takes_a_slot(
    ledger: WebhookLedger, client: Redis, settings: Settings
) -> None:
    admission, _ = admission_of(ledger, client, settings)
    first = await admission.admit("orders", "msg_1")
    assert isinstance(first.outcome, Claim)
    receipt = _receipt()
    await ledger.complete(first.outcome, receipt)
    again = await admission.admit("orders", "msg_1")
    assert again.outcome == receipt
    assert again.decision is not None
    assert again.decision.remaining == 0


async def test_a_copy_arriving_while_the_first_is_produced_waits_for_its_receipt(
    ledger: WebhookLedger, client: Redis, settings: Settings
) -> None:
    roomy = RateLimitSettings(rate_per_s=100.0, burst=100)
    admission, _ = admission_of(ledger, client, settings, roomy)
    first = await admission.admit("orders", "msg_1")
    assert isinstance(first.outcome, Claim)
    copy = asyncio.create_task(admission.admit("orders", "msg_1"))
    await asyncio.sleep(0.05)
    assert not copy.done()
    receipt = _receipt()
    await ledger.complete(first.outcome, receipt)
    assert (await copy).outcome == receipt


async def test_of_concurrent_copies_exactly_one_claims(
    ledger: WebhookLedger, client: Redis, settings: Settings
) -> None:
    roomy = RateLimitSettings(rate_per_s=100.0, burst=100)
    admission, _ = admission_of(ledger, client, settings, roomy)
    copies = [asyncio.create_task(admission.admit("orders", "msg_race")) for _ in range(8)]
    # The others poll until the winner completes (or `dedupe_wait_s` passes), so the first to
    # finish is the winner, alone.
    done, waiting = await asyncio.wait(copies, return_when=asyncio.FIRST_COMPLETED)
    assert len(done) == 1
    claim = done.pop().result().outcome
    assert isinstance(claim, Claim)
    receipt = _receipt()
    await ledger.complete(claim, receipt)
    assert [(await copy).outcome for copy in waiting] == [receipt] * 7


async def test_with_limits_off_only_the_claim_is_taken(
    ledger: WebhookLedger, client: Redis, settings: Settings
) -> None:
    admission, limiter = admission_of(ledger, client, settings, RateLimitSettings(enabled=False))
    admitted = await admission.admit("orders", "msg_1")
    assert admitted.decision is None
    assert isinstance(admitted.outcome, Claim)
    assert await client.get(limiter.key("orders")) is None
