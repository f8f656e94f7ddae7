"""The description of a stalled worker's consumer: it must never fail the worker it describes."""

from __future__ import annotations

from faust.types import TP

from streams.runtime.app import create_faust_app
from streams.runtime.consumer_state import describe_consumer
from streams.settings import WorkerProcessSettings


async def test_whatever_faust_state_is_missing_the_description_is_written() -> None:
    app = create_faust_app(WorkerProcessSettings.model_validate({"worker": {"store": "memory://"}}))
    tp = TP("orders.events", 0)
    text = describe_consumer(app, [tp], {tp: 42}, batches_in_flight=3)
    assert "batches in flight=3" in text
    assert "orders.events[0] end=42" in text
    assert "task " in text  # where each task of the running loop waits (this test's, here)
