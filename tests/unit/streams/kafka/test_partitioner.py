"""The key partitioner must put every key where Kafka's Java clients put it."""

from __future__ import annotations

from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given
from hypothesis import strategies as st

from streams.kafka.partitioner import KeyPartitioner, murmur2

# org.apache.kafka.common.utils.UtilsTest#testMurmur2: the Java client's own values (signed).
JAVA_MURMUR2 = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    bytes([ord("a"), ord("b"), ord("c")]): 479470107,
}


def _signed(value: int) -> int:
    return value - (1 << 32) if value >= 1 << 31 else value


def test_murmur2_gives_the_java_clients_values() -> None:
    assert {key: _signed(murmur2(key)) for key in JAVA_MURMUR2} == JAVA_MURMUR2


@given(st.binary(max_size=80))
def test_murmur2_agrees_with_aiokafkas(key: bytes) -> None:
    assert murmur2(key) == aiokafka_murmur2(key)


@given(st.binary(min_size=1, max_size=80), st.integers(min_value=1, max_value=64))
def test_a_key_goes_to_the_partition_murmur2_names(key: bytes, count: int) -> None:
    partitions = list(range(count))
    expected = (aiokafka_murmur2(key) & 0x7FFFFFFF) % count
    assert KeyPartitioner()(key, partitions, partitions) == expected


def test_a_key_is_placed_among_all_partitions_not_only_the_available_ones() -> None:
    """Kafka places a keyed record by the partition count alone: a partition without a leader
    at the moment does not move keys elsewhere."""
    key = b"notification-1"
    every = list(range(12))
    expected = (aiokafka_murmur2(key) & 0x7FFFFFFF) % 12
    others = [p for p in every if p != expected]
    assert KeyPartitioner()(key, every, others) == expected


def test_a_record_without_a_key_goes_to_an_available_partition() -> None:
    assert KeyPartitioner()(None, [0, 1, 2], [2]) == 2


def test_a_key_sent_again_goes_where_it_went_and_the_remembered_keys_stay_bounded() -> None:
    """The partitioner remembers recent keys' hashes (a notification's records are sent within
    seconds of each other); however many keys pass, it keeps at most `MAX_KEYS` of them."""
    partitioner = KeyPartitioner()
    partitions = list(range(6))
    keys = [f"n-{n}".encode() for n in range(KeyPartitioner.MAX_KEYS + 10)]
    for _ in range(2):
        for key in keys:
            expected = (aiokafka_murmur2(key) & 0x7FFFFFFF) % 6
            assert partitioner(key, partitions, partitions) == expected
    assert 0 < len(partitioner._hashes) <= KeyPartitioner.MAX_KEYS


def test_a_key_that_is_not_bytes_is_placed_by_the_same_rule() -> None:
    key = bytearray(b"notification-1")
    expected = (aiokafka_murmur2(bytes(key)) & 0x7FFFFFFF) % 12
    assert KeyPartitioner()(key, list(range(12)), list(range(12))) == expected  # type: ignore[arg-type]
