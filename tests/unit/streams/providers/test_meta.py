"""Meta's side of receipts: WhatsApp status webhooks read into our receipts, and their signature."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from streams.errors import ContractViolationError, InvalidSignatureError
from streams.providers import meta
from streams.providers.meta import SIGNATURE_HEADER, digest, verify
from streams.providers.receipts import ReceiptRequest

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
BODY = b'[{"event":"delivered","timestamp":1795300000}]'


def parse(raw: bytes, **query: str) -> list[dict[str, Any]]:
    items = meta.parse_receipts(ReceiptRequest(raw, query, NOW))
    return [item.model_dump(exclude_none=True) for item in items]


def meta_hook(*statuses: dict[str, Any]) -> bytes:
    value = {"messaging_product": "whatsapp", "metadata": {}, "statuses": list(statuses)}
    hook = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "waba-1", "changes": [{"field": "messages", "value": value}]}],
    }
    return json.dumps(hook).encode()


def test_meta_statuses_are_nested_and_carry_our_id_as_opaque_callback_data() -> None:
    raw = meta_hook(
        {
            "id": "wamid.1",
            "status": "sent",
            "timestamp": "1795300000",
            "biz_opaque_callback_data": "n-1",
        },
        {
            "id": "wamid.1",
            "status": "delivered",
            "timestamp": "1795300001",
            "biz_opaque_callback_data": "n-1",
        },
        {
            "id": "wamid.2",
            "status": "failed",
            "timestamp": "1795300002",
            "biz_opaque_callback_data": "n-2",
            "errors": [{"code": 131026, "title": "Message undeliverable"}],
        },
    )
    assert parse(raw) == [
        {
            "notification_id": "n-1",
            "provider_message_id": "wamid.1",
            "state": "delivered",
            "occurred_at": datetime.fromtimestamp(1795300001, UTC),
            "channel": "whatsapp",
        },
        {
            "notification_id": "n-2",
            "provider_message_id": "wamid.2",
            "state": "failed",
            "occurred_at": datetime.fromtimestamp(1795300002, UTC),
            "channel": "whatsapp",
            "reason": "131026 Message undeliverable",
        },
    ]
    with pytest.raises(ContractViolationError) as caught:
        parse(meta_hook({"status": "delivered", "timestamp": "1"}))
    assert [e.field for e in caught.value.errors] == ["entry[0].changes[0].value.statuses[0].id"]


def test_meta_hub_signature() -> None:
    header = {SIGNATURE_HEADER: digest("app-secret", BODY)}
    assert header[SIGNATURE_HEADER].startswith("sha256=")
    verify("app-secret", header, BODY)
    with pytest.raises(InvalidSignatureError):
        verify("app-secret", header, BODY[:-1])
    with pytest.raises(InvalidSignatureError) as missing:
        verify("app-secret", {}, BODY)
    assert missing.value.header == SIGNATURE_HEADER
