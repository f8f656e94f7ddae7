"""The pure parts of the webhook ledger: receipts survive the round trip through Redis text."""

from __future__ import annotations

from uuid import uuid4

import pytest

from streams.errors import PoisonError
from streams.kafka.event_producer import RecordPosition
from streams.settings import RedisSettings, WebhookSettings
from streams.stores.webhook_ledger import DONE, CorruptLedgerEntryError, Receipt, WebhookLedger


def test_a_receipt_round_trips() -> None:
    receipt = Receipt(uuid4(), RecordPosition("t1-orders.events", 5, 1234))
    encoded = receipt.encode()
    assert encoded.startswith(DONE)
    assert Receipt.decode(encoded) == receipt


@pytest.mark.parametrize("value", [DONE, DONE + "{}", DONE + "[1]", DONE + '{"event_id": "x"}'])
def test_an_unreadable_receipt_is_poison(value: str) -> None:
    with pytest.raises(CorruptLedgerEntryError) as caught:
        Receipt.decode(value)
    assert isinstance(caught.value, PoisonError)


async def test_keys_are_isolated_by_topic_prefix_and_source() -> None:
    redis, webhook = RedisSettings(), WebhookSettings()
    one = WebhookLedger.from_settings(redis, webhook, topic_prefix="a-", delivery_timeout_s=1.0)
    other = WebhookLedger.from_settings(redis, webhook, topic_prefix="b-", delivery_timeout_s=1.0)
    try:
        keys = {one.key("orders", "m1"), one.key("users", "m1"), other.key("orders", "m1")}
        assert len(keys) == 3
    finally:
        await one.close()
        await other.close()
