"""Provider error text without recipients: addresses and phone numbers out, codes kept."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from streams.redaction import redact
from streams.stores.delivery_store import DeliveryRow, TransitionRow

AT = datetime(2026, 12, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "550 5.1.1 <ada.lovelace+news@example.co.uk>: Recipient address rejected",
            "550 5.1.1 <[email]>: Recipient address rejected",
        ),
        (
            "error 21211: The 'To' number +1 (500) 555-0001 is not a valid phone number",
            "error 21211: The 'To' number [phone] is not a valid phone number",
        ),
        ("HTTP 400: invalid recipient 33612345678", "HTTP 400: invalid recipient [phone]"),
        ("131026 Message undeliverable", "131026 Message undeliverable"),
        (
            "error 30003: Unreachable destination handset",
            "error 30003: Unreachable destination handset",
        ),
        (None, None),
    ],
)
def test_recipients_are_redacted_and_codes_kept(text: str | None, expected: str | None) -> None:
    assert redact(text) == expected


def test_delivery_views_never_hold_a_recipient() -> None:
    """Whether built by the tracker (and so written) or read back from PostgreSQL (rows written
    before this rule), a view's reason and last error are redacted."""
    row = DeliveryRow(
        notification_id="n-1",
        user_id="u-1",
        channel="email",
        category=None,
        template=None,
        state="bounced",
        state_rank=5,
        state_at=AT,
        reason="bounced: ada@example.com",
        last_error="550 <ada@example.com> unknown",
        attempts=1,
        provider="sendgrid",
        provider_message_id="m-1",
        caused_at=None,
        queued_at=None,
        delivered_at=None,
        created_at=AT,
        updated_at=AT,
    )
    assert (row.reason, row.last_error) == ("bounced: [email]", "550 <[email]> unknown")
    step = TransitionRow.model_validate(
        {
            "notification_id": "n-1",
            "state": "failed",
            "occurred_at": AT,
            "event_id": "00000000-0000-0000-0000-000000000001",
            "reason": "number +33612345678 unreachable",
        }
    )
    assert step.reason == "number [phone] unreachable"
