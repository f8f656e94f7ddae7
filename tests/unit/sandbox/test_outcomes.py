"""Recipients decide outcomes, and invalid recipients are told apart from valid ones."""

from __future__ import annotations

import pytest

from sandbox.outcomes import Channel, Outcome, is_valid_recipient, outcome_for


@pytest.mark.parametrize(
    ("recipient", "outcome"),
    [
        ("ada@example.com", Outcome.DELIVERED),
        ("ada@bounce.test", Outcome.BOUNCE),
        ("ada@SPAM.test", Outcome.SPAM),
        ("ada@fail.test", Outcome.FAIL),
        ("ada@slow.test", Outcome.SLOW),
        # Only the domain decides: a local part that looks like a test domain does not.
        ("fail.test@example.com", Outcome.DELIVERED),
        ("ada@sub.bounce.test", Outcome.DELIVERED),
    ],
)
def test_email_outcome_by_domain(recipient: str, outcome: Outcome) -> None:
    assert outcome_for(Channel.EMAIL, recipient) is outcome


@pytest.mark.parametrize("channel", [Channel.SMS, Channel.WHATSAPP])
@pytest.mark.parametrize(
    ("phone", "outcome"),
    [
        ("+15550100001", Outcome.BOUNCE),
        ("+15550100002", Outcome.FAIL),
        ("+15550100003", Outcome.SLOW),
        ("+15550100004", Outcome.DELIVERED),
        ("+15550100010", Outcome.DELIVERED),
    ],
)
def test_phone_outcome_by_last_four_digits(channel: Channel, phone: str, outcome: Outcome) -> None:
    assert outcome_for(channel, phone) is outcome


@pytest.mark.parametrize(
    ("token", "outcome"),
    [
        ("bounce-device-1", Outcome.BOUNCE),
        ("fail-device-1", Outcome.FAIL),
        ("slow-device-1", Outcome.SLOW),
        ("device-bounce-1", Outcome.DELIVERED),
        ("fcm:APA91bHPRgkF", Outcome.DELIVERED),
    ],
)
def test_push_outcome_by_token_prefix(token: str, outcome: Outcome) -> None:
    assert outcome_for(Channel.PUSH, token) is outcome


@pytest.mark.parametrize(
    ("channel", "recipient", "valid"),
    [
        (Channel.EMAIL, "ada@example.com", True),
        (Channel.EMAIL, "ada.example.com", False),
        (Channel.EMAIL, "ada@localhost", False),
        (Channel.EMAIL, "a da@example.com", False),
        (Channel.EMAIL, "ada@@example.com", False),
        (Channel.SMS, "+4915112345678", True),
        (Channel.SMS, "4915112345678", False),
        (Channel.SMS, "+0915112345678", False),
        (Channel.SMS, "+49 151 1234567", False),
        (Channel.SMS, "+1234567890123456", False),
        (Channel.WHATSAPP, "+15550100001", True),
        (Channel.PUSH, "bounce-device-1", True),
        (Channel.PUSH, "short", False),
        (Channel.PUSH, "has spaces in it", False),
    ],
)
def test_recipient_validity(channel: Channel, recipient: str, valid: bool) -> None:
    assert is_valid_recipient(channel, recipient) is valid
