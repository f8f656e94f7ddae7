"""What happens to a send, decided by its recipient alone, so a test chooses an outcome by
choosing an address; and the recipient checks a real provider makes before accepting a send.

Pure functions: the HTTP handlers and the SMTP handler both ask here.
"""

from __future__ import annotations

import enum
import re


class Outcome(enum.Enum):
    DELIVERED = "delivered"
    # Accepted, then a `bounced` receipt.
    BOUNCE = "bounce"
    # Accepted, a `delivered` receipt, then a `complained` one.
    SPAM = "spam"
    # The provider answers 500 (SMTP 451): nothing is accepted, no receipt.
    FAIL = "fail"
    # Delivered, but the provider answers only after `sandbox.slow_s`.
    SLOW = "slow"


class Channel(enum.Enum):
    EMAIL = "email"
    SMS = "sms"
    PUSH = "push"
    WHATSAPP = "whatsapp"


# Deliberately simple: one @, something on both sides, a dot in the domain, no spaces.
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_E164 = re.compile(r"\+[1-9]\d{6,14}")
_PUSH_TOKEN = re.compile(r"[A-Za-z0-9_:\-.]{8,4096}")
# What the receipt webhook accepts as a notification id (schemas.orders.Identifier).
_NOTIFICATION_ID = re.compile(r"[A-Za-z0-9._:@-]{1,128}")

_EMAIL_DOMAINS = {
    "bounce.test": Outcome.BOUNCE,
    "spam.test": Outcome.SPAM,
    "fail.test": Outcome.FAIL,
    "slow.test": Outcome.SLOW,
}
_PHONE_SUFFIXES = {"0001": Outcome.BOUNCE, "0002": Outcome.FAIL, "0003": Outcome.SLOW}
_TOKEN_PREFIXES = {"bounce-": Outcome.BOUNCE, "fail-": Outcome.FAIL, "slow-": Outcome.SLOW}

BOUNCE_REASONS = {
    Channel.EMAIL: "550 5.1.1 mailbox does not exist",
    Channel.SMS: "30005 unknown destination handset",
    Channel.WHATSAPP: "131026 message undeliverable",
    Channel.PUSH: "UNREGISTERED device token",
}


def is_email(address: str) -> bool:
    return _EMAIL.fullmatch(address) is not None


def is_e164(phone: str) -> bool:
    return _E164.fullmatch(phone) is not None


def is_push_token(token: str) -> bool:
    return _PUSH_TOKEN.fullmatch(token) is not None


def is_notification_id(value: str) -> bool:
    return _NOTIFICATION_ID.fullmatch(value) is not None


def is_valid_recipient(channel: Channel, recipient: str) -> bool:
    if channel is Channel.EMAIL:
        return is_email(recipient)
    if channel is Channel.PUSH:
        return is_push_token(recipient)
    return is_e164(recipient)


def outcome_for(channel: Channel, recipient: str) -> Outcome:
    """The outcome of a send to a recipient that `is_valid_recipient` accepted."""
    if channel is Channel.EMAIL:
        domain = recipient.rpartition("@")[2].lower()
        return _EMAIL_DOMAINS.get(domain, Outcome.DELIVERED)
    if channel is Channel.PUSH:
        for prefix, outcome in _TOKEN_PREFIXES.items():
            if recipient.startswith(prefix):
                return outcome
        return Outcome.DELIVERED
    return _PHONE_SUFFIXES.get(recipient[-4:], Outcome.DELIVERED)
