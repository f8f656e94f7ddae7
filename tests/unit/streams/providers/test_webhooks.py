"""The registry of receipt webhooks: every provider we take receipts from has a format."""

from __future__ import annotations

from schemas.provider_receipts import RECEIPT_PROVIDERS
from streams.providers.receipts import FORM, JSON
from streams.providers.webhooks import FORMATS, NATIVE_HEADERS


def test_every_provider_has_a_format() -> None:
    assert set(FORMATS) == set(RECEIPT_PROVIDERS)


def test_only_twilio_posts_a_form_and_native_signatures_are_for_known_providers() -> None:
    assert {name for name, fmt in FORMATS.items() if fmt.media_type == FORM} == {"twilio"}
    assert {fmt.media_type for fmt in FORMATS.values()} == {FORM, JSON}
    assert set(NATIVE_HEADERS) == {"sendgrid", "twilio", "meta"}
