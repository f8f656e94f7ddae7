"""Whether a worker has read the source partitions it owns to their end.

The metrics aggregator holds its watermark for an input partition nobody is known to have read
(a killed worker's, until the group hands it on); every worker's metrics tick says which of its
partitions it has read, from this. "Read" is judged on the fetching (`FetchPositions`): records
fetched are delivered to the agents within a batch, well inside the windows' grace period.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping
from typing import Any

import faust
from faust.types import TP

from streams.runtime.app import TributaryApp
from streams.runtime.records import source_key

log = logging.getLogger(__name__)


def read_to_end(
    owned: Iterable[TP], next_offsets: Mapping[TP, int | None], ends: Mapping[TP, int | None]
) -> dict[str, bool]:
    """Per owned partition: whether fetching has reached the log's end. A partition whose
    position or end is unknown (just assigned, an end offset not answered) is not read."""
    progress = {}
    for tp in owned:
        next_offset, end = next_offsets.get(tp), ends.get(tp)
        read = end is not None and (end == 0 or (next_offset is not None and next_offset >= end))
        progress[source_key(tp.topic, tp.partition)] = read
    return progress


def reading_progress(app: faust.App, topics: Collection[str]) -> dict[str, bool]:
    """`read_to_end` for the partitions of `topics` the worker owns now; empty while the group
    rebalances (a partition no report names is taken as unread).

    The ends are those the consumer's last fetch responses carried (aiokafka's `highwater`), not
    asked afresh (a request to the broker for every report). A partition paused for flow
    control may then be reported read while records written since its last fetch wait, seconds
    at most: within the grace."""
    if not isinstance(app, TributaryApp) or app.rebalancing or app.in_recovery:
        return {}
    consumer = app.consumer
    sources = sorted(tp for tp in consumer.assignment() if tp.topic in topics)
    ends = {tp: _highwater(consumer, tp) for tp in sources}
    positions = {tp: app.fetch_positions.next_offset(tp) for tp in sources}
    return read_to_end(sources, positions, ends)


def _highwater(consumer: Any, tp: TP) -> int | None:
    try:
        end = consumer.highwater(tp)
    except Exception as exc:  # noqa: BLE001 - not started, or the partition just revoked
        log.debug("reading progress: no end offset for %s: %r", tp, exc)
        return None
    return None if end is None else int(end)
