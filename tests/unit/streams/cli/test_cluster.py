"""Which broker answers the CLI's cluster reads wait out rather than report."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError

from streams.cli.cluster import is_passing


@pytest.mark.parametrize(
    "code",
    [
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        # A partition whose leadership just moved (a new topic, a broker restart): the client's
        # metadata is behind, and Kafka documents both as retriable.
        KafkaError.UNKNOWN_LEADER_EPOCH,
        KafkaError.FENCED_LEADER_EPOCH,
    ],
)
def test_leadership_changes_pass(code: int) -> None:
    assert is_passing(KafkaError(code))


@pytest.mark.parametrize(
    "code", [KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.INVALID_REQUEST]
)
def test_refusals_do_not(code: int) -> None:
    assert not is_passing(KafkaError(code))
