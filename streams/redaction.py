"""Recipient addresses and phone numbers taken out of provider error text before it is kept.

Providers echo the recipient in their errors ("550 5.1.1 <ada@example.com>: Recipient address
rejected", "The 'To' number +15005550001 is not a valid phone number"). The delivery views keep
that text for operators and serve it to API clients, which must not learn other people's
addresses from it; the error code and the wording are what matter and stay.
"""

from __future__ import annotations

import re

EMAIL = "[email]"
PHONE = "[phone]"
_EMAIL = re.compile(r"[^\s@<>()\[\]\"',;:]+@[^\s@<>()\[\]\"',;:]+\.[A-Za-z]{2,}")
# E.164 as we send it (a plus, then 8 to 15 digits, maybe grouped), or a bare run of 10 to 15
# digits (a number without its plus); SMTP codes (550 5.1.1) and error codes stay.
_PHONE = re.compile(r"\+\d(?:[\s().-]{0,2}\d){7,14}|(?<![\w.])\d{10,15}(?![\w.])")


def redact(text: str | None) -> str | None:
    if text is None:
        return None
    return _PHONE.sub(PHONE, _EMAIL.sub(EMAIL, text))
