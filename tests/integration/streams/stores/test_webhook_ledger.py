"""The webhook ledger on the real Redis: claims, receipts, releases, races and outages."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr

from streams.errors import ServiceUnavailableError
from streams.kafka.event_producer import RecordPosition
from streams.settings import RedisSettings, Settings, WebhookSettings
from streams.stores.redis_client import redis_client
from streams.stores.webhook_ledger import Claim, DeliveryInProgressError, Receipt, WebhookLedger


def ledger_of(
    settings: Settings, webhook: WebhookSettings, redis: RedisSettings | None = None
) -> WebhookLedger:
    return WebhookLedger.from_settings(
        redis or settings.redis,
        webhook,
        topic_prefix=settings.topic_prefix,
        delivery_timeout_s=settings.kafka.delivery_timeout_s,
    )


@pytest.fixture
async def ledger(settings: Settings) -> AsyncIterator[WebhookLedger]:
    webhook = settings.webhook.model_copy(update={"dedupe_wait_s": 2.0})
    ledger = ledger_of(settings, webhook)
    yield ledger
    await ledger.close()


def _receipt(offset: int = 7) -> Receipt:
    return Receipt(uuid.uuid4(), RecordPosition("t-orders.events", 1, offset))


async def test_the_first_claim_wins_and_a_completed_webhook_answers_its_receipt(
    ledger: WebhookLedger,
) -> None:
    claim = await ledger.claim("orders", "msg_1")
    assert isinstance(claim, Claim)
    receipt = _receipt()
    assert await ledger.complete(claim, receipt)
    assert await ledger.claim("orders", "msg_1") == receipt


async def test_a_released_webhook_can_be_claimed_again(ledger: WebhookLedger) -> None:
    claim = await ledger.claim("orders", "msg_1")
    assert isinstance(claim, Claim)
    await ledger.release(claim)
    assert isinstance(await ledger.claim("orders", "msg_1"), Claim)


async def test_of_many_concurrent_claims_exactly_one_wins_and_the_rest_see_its_receipt(
    ledger: WebhookLedger,
) -> None:
    receipt = _receipt()

    async def contender() -> Claim | Receipt:
        outcome = await ledger.claim("orders", "msg_race")
        if isinstance(outcome, Claim):
            await ledger.complete(outcome, receipt)
        return outcome

    outcomes = await asyncio.gather(*(contender() for _ in range(20)))
    assert sum(isinstance(outcome, Claim) for outcome in outcomes) == 1
    assert [o for o in outcomes if not isinstance(o, Claim)] == [receipt] * 19


async def test_a_waiting_copy_takes_over_when_the_holder_releases(ledger: WebhookLedger) -> None:
    holder = await ledger.claim("orders", "msg_1")
    assert isinstance(holder, Claim)
    waiter = asyncio.create_task(ledger.claim("orders", "msg_1"))
    await ledger.release(holder)
    taken = await waiter
    assert isinstance(taken, Claim)
    assert taken.token != holder.token


async def test_a_copy_gives_up_waiting_for_a_claim_that_does_not_settle(
    settings: Settings, ledger: WebhookLedger
) -> None:
    holder = await ledger.claim("orders", "msg_1")
    assert isinstance(holder, Claim)
    webhook = settings.webhook.model_copy(update={"dedupe_wait_s": 0.2})
    impatient = ledger_of(settings, webhook)
    try:
        with pytest.raises(DeliveryInProgressError):
            await impatient.claim("orders", "msg_1")
    finally:
        await impatient.close()


async def test_a_lapsed_claim_cannot_release_or_complete_its_successors_entry(
    ledger: WebhookLedger,
) -> None:
    current = await ledger.claim("orders", "msg_1")
    assert isinstance(current, Claim)
    lapsed = Claim(current.key, "pending:someone-else")
    await ledger.release(lapsed)
    assert not await ledger.complete(lapsed, _receipt())
    receipt = _receipt()
    assert await ledger.complete(current, receipt)
    assert await ledger.claim("orders", "msg_1") == receipt


async def test_a_held_claim_gets_a_whole_lease_again_and_only_from_its_holder(
    settings: Settings, ledger: WebhookLedger
) -> None:
    """A send that timed out waits for its record's outcome (`api.settlement`): its claim is
    renewed, so that a retry meanwhile produces no second copy."""
    claim = await ledger.claim("orders", "msg_held")
    assert isinstance(claim, Claim)
    redis = redis_client(settings.redis)
    try:
        await redis.pexpire(claim.key, 500)  # most of its lease gone
        assert not await ledger.hold(Claim(claim.key, "pending:someone-else"))
        assert await redis.pttl(claim.key) <= 500
        assert await ledger.hold(claim)
        assert await redis.pttl(claim.key) > ledger.lease_s * 1000 - 1000
        assert await redis.get(claim.key) == claim.token
        await ledger.release(claim)
        assert not await ledger.hold(claim)  # gone: nothing to renew
    finally:
        await redis.aclose()


async def test_ids_of_different_sources_do_not_collide(ledger: WebhookLedger) -> None:
    claim = await ledger.claim("orders", "msg_1")
    assert isinstance(claim, Claim)
    assert isinstance(await ledger.claim("users", "msg_1"), Claim)


async def test_an_unreachable_redis_is_a_redis_outage(settings: Settings) -> None:
    redis = settings.redis.model_copy(
        update={"url": SecretStr("redis://127.0.0.1:1/0"), "socket_timeout_s": 1.0}
    )
    ledger = ledger_of(settings, settings.webhook, redis)
    try:
        with pytest.raises(ServiceUnavailableError) as caught:
            await ledger.claim("orders", "msg_1")
        assert caught.value.service == "redis"
        with pytest.raises(ServiceUnavailableError):
            await ledger.ping(1.0)
    finally:
        await ledger.close()


async def test_a_redis_that_stops_answering_is_a_redis_outage(settings: Settings) -> None:
    """A server that takes the connection and never replies: the ledger's calls still end, as a
    Redis outage, once the socket timeout has passed (the client reads replies without a timer
    of its own each; the pipeline as a whole is bounded)."""
    accepted: list[asyncio.StreamWriter] = []

    async def silent(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    redis = settings.redis.model_copy(
        update={"url": SecretStr(f"redis://127.0.0.1:{port}/0"), "socket_timeout_s": 0.5}
    )
    ledger = ledger_of(settings, settings.webhook, redis)
    try:
        async with asyncio.timeout(20):  # a hang fails the test instead of stalling the run
            with pytest.raises(ServiceUnavailableError) as caught:
                await ledger.claim("orders", "msg_1")
        assert caught.value.service == "redis"
        assert accepted  # it did reach the server: the reply is what never came
    finally:
        await ledger.close()
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_ping_answers_when_redis_is_up(ledger: WebhookLedger) -> None:
    await ledger.ping(2.0)
