"""A worker holding records Kafka will not take still stops when told to (SIGTERM).

Faust flushes its producer when the worker stops, and a record Kafka refuses (its topic gone, or
Kafka itself unreachable) is retried for as long as the producer's request timeout allows:
Faust's default is 20 minutes, longer than any orchestrator waits. The worker bounds it with
`TRIBUTARY_WORKER_SEND_TIMEOUT_S`. Deleting the topic the metrics tick writes to makes such a
record on demand (the broker does not create topics on its own here).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from streams.catalog import TopicCatalog
from streams.settings import Settings
from streams.topic_admin import delete_topics_blocking
from tests.integration.worker_process import (
    WorkerProcess,
    eventually,
    make_worker_settings,
    own_topics,
)

REFUSED = "UnknownTopicOrPartitionError"


async def test_a_worker_with_records_kafka_refuses_stops_within_its_send_timeout(
    stack_settings: Settings, tmp_path: Path
) -> None:
    base = make_worker_settings(stack_settings, tmp_path)
    settings = base.model_copy(
        update={
            "worker": base.worker.model_copy(update={"send_timeout_s": 5.0}),
            "metrics": base.metrics.model_copy(update={"tick_s": 0.5}),
        }
    )
    with own_topics(settings):
        worker = WorkerProcess(settings, tmp_path / "worker.log")
        try:
            await asyncio.to_thread(worker.wait_ready)
            partials = TopicCatalog(settings).metrics_partials.name
            await asyncio.to_thread(delete_topics_blocking, settings, [partials])

            async def refused() -> bool | None:
                return True if REFUSED in worker.log_tail(20_000) else None

            await eventually(refused, what="a tick Kafka refuses", worker=worker)
        finally:
            # Killed (and failing below) if it does not stop within the deadline (30 s).
            returncode = await asyncio.to_thread(worker.stop)
        assert returncode == 0, worker.log_tail()
