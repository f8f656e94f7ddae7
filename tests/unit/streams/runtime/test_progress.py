"""Which owned partitions a worker reports read to their end (the metrics watermark's holds)."""

from __future__ import annotations

from faust.types import TP

from streams.runtime.progress import read_to_end

A0, A1, A2, A3 = (TP("a", n) for n in range(4))


def test_a_partition_fetched_to_its_end_is_read_and_one_behind_is_not() -> None:
    ends = {A0: 10, A1: 10}
    assert read_to_end([A0, A1], {A0: 10, A1: 7}, ends) == {"a:0": True, "a:1": False}


def test_an_unknown_position_or_end_is_not_read_but_an_empty_log_is() -> None:
    progress = read_to_end([A0, A1, A2], {A0: None, A1: 3, A2: None}, {A0: 5, A1: None, A2: 0})
    assert progress == {"a:0": False, "a:1": False, "a:2": True}


def test_a_partition_the_end_offsets_left_out_is_not_read() -> None:
    assert read_to_end([A3], {A3: 4}, {}) == {"a:3": False}
