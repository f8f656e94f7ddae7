"""Each provider's receipt webhook at a glance: the media type it posts, its parser, and the header
that carries its own signature.

Our sandbox (and any relay we run) signs receipts with Standard Webhooks, like every other
webhook here. The real providers sign their own way, and the receipts endpoint accepts that too
when the provider's key is configured (each provider's `verify`). fcm and smtp have no webhooks
of their own, so only Standard Webhooks, and our plain shape. The registry lives apart from
`streams.providers.receipts` because it imports every provider module, which imports that one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from schemas.provider_receipts import ProviderReceiptItem
from streams.providers import meta, sendgrid, twilio
from streams.providers.receipts import FORM, JSON, ReceiptRequest, plain_receipts

Parse = Callable[[ReceiptRequest], list[ProviderReceiptItem]]


@dataclass(frozen=True, slots=True)
class ReceiptFormat:
    media_type: str
    parse: Parse


FORMATS: Mapping[str, ReceiptFormat] = {
    "sendgrid": ReceiptFormat(JSON, sendgrid.parse_receipts),
    "twilio": ReceiptFormat(FORM, twilio.parse_receipts),
    "meta": ReceiptFormat(JSON, meta.parse_receipts),
    "fcm": ReceiptFormat(JSON, plain_receipts),
    "smtp": ReceiptFormat(JSON, plain_receipts),
}

NATIVE_HEADERS: Mapping[str, str] = {
    "sendgrid": sendgrid.SIGNATURE_HEADER,
    "twilio": twilio.SIGNATURE_HEADER,
    "meta": meta.SIGNATURE_HEADER,
}
