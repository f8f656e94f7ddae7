"""The sandbox speaks each provider's own receipt format, and the API reads it back."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qsl

import pytest

from sandbox.outcomes import Channel
from sandbox.receipts import Receipt, provider_posts
from streams.providers.receipts import ReceiptRequest
from streams.providers.webhooks import FORMATS

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
AT_S = 1_795_300_000.0
STATES = ("delivered", "bounced", "failed", "complained", "opened")


def receipts(channel: Channel) -> list[Receipt]:
    return [
        Receipt(f"n-{state}", f"m-{state}", state, AT_S, channel, f"{state} because")
        for state in STATES
    ]


def read_back(provider: str, channel: Channel) -> list[tuple[str, str, str]]:
    found = []
    for post in provider_posts(provider, receipts(channel)):
        fmt = FORMATS[provider]
        assert post.content_type == fmt.media_type
        request = ReceiptRequest(post.body, dict(parse_qsl(post.query)), NOW)
        found += [(i.notification_id, i.provider_message_id, i.state) for i in fmt.parse(request)]
    return found


@pytest.mark.parametrize(
    ("provider", "channel", "expected"),
    [
        ("sendgrid", Channel.EMAIL, list(STATES)),
        ("smtp", Channel.EMAIL, list(STATES)),
        ("fcm", Channel.PUSH, list(STATES)),
        # SMS has no spam complaint; a bounce is Twilio's "undelivered".
        ("twilio", Channel.SMS, ["delivered", "bounced", "failed", "opened"]),
        # WhatsApp has neither bounces (they fail) nor complaints.
        ("meta", Channel.WHATSAPP, ["delivered", "failed", "failed", "opened"]),
    ],
)
def test_what_the_sandbox_posts_is_what_the_api_reads(
    provider: str, channel: Channel, expected: list[str]
) -> None:
    found = read_back(provider, channel)
    assert [state for _, _, state in found] == expected
    for notification_id, message_id, _ in found:
        assert message_id == notification_id.replace("n-", "m-")


def test_twilio_posts_one_callback_per_message() -> None:
    posts = provider_posts("twilio", receipts(Channel.SMS))
    assert len(posts) == 4
    assert all(p.query == "" for p in posts), "the id is signed, in the body"
    assert {dict(parse_qsl(p.body.decode()))["notification_id"] for p in posts} == {
        "n-delivered",
        "n-bounced",
        "n-failed",
        "n-opened",
    }
