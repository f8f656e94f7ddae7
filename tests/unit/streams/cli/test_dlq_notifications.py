"""`tributary dlq ... notifications`: one dead-letter topic for dispatch and its retry topics."""

from __future__ import annotations

import pytest

from streams.cli.errors import UsageError
from streams.cli.topic_names import resolve_dead_letters
from streams.kafka.catalog import TopicCatalog
from streams.kafka.dead_letters import (
    ForeignDeadLetterError,
    dead_letter_headers,
    redrive_record,
)
from streams.settings import DispatchSettings, KafkaSettings

PREFIX = "t1-"
CATALOG = TopicCatalog(PREFIX, KafkaSettings(), DispatchSettings().retry_delays_s)


@pytest.mark.parametrize(
    "typed",
    ["notifications", "notifications.dlq", "t1-notifications.dlq", "notifications.dispatch"],
)
def test_notifications_name_the_shared_dead_letters_and_redrive_to_dispatch(typed: str) -> None:
    route = resolve_dead_letters(CATALOG, PREFIX, typed)
    assert route.dead_letters.name == "t1-notifications.dlq"
    assert route.source.name == "t1-notifications.dispatch"
    assert route.also_from == (
        "t1-notifications.dispatch.retry-1s",
        "t1-notifications.dispatch.retry-5s",
        "t1-notifications.dispatch.retry-30s",
    )


def test_other_families_keep_their_own_dead_letters() -> None:
    route = resolve_dead_letters(CATALOG, PREFIX, "orders.events")
    assert (route.source.name, route.dead_letters.name) == (
        "t1-orders.events",
        "t1-orders.events.dlq",
    )
    assert route.also_from == ()
    with pytest.raises(UsageError, match="not a family topic"):
        resolve_dead_letters(CATALOG, PREFIX, "nope")


def test_a_letter_from_a_retry_topic_is_redriven_to_the_main_topic_without_dlq_headers() -> None:
    retry = "t1-notifications.dispatch.retry-30s"
    headers = (*dead_letter_headers(ValueError("x"), retry, 3, 17), ("dlq.attempts", b"4"))
    record = redrive_record(headers, b"n-1", b"v", "t1-notifications.dispatch", (retry,))
    assert (record.topic, record.key, record.value, record.headers) == (
        "t1-notifications.dispatch",
        b"n-1",
        b"v",
        (),
    )
    with pytest.raises(ForeignDeadLetterError):
        redrive_record(headers, b"n-1", b"v", "t1-notifications.dispatch")
