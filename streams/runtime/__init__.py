"""The streaming runtime: the only code that reaches into Faust, mode and aiokafka internals.

Its public face is what this module exports; a pipeline needs nothing else:

- `create_faust_app` builds a process's app (a `TributaryApp`), its guards installed;
  `worker_event_loop` the loop;
- `batch_agent` declares an agent: take a batch, call the pipeline's plain `process`, acknowledge
  in the order `streams.runtime.checkpoint` states (read that docstring first);
- `raw_topic` declares a topic of bytes, `TopicPublisher` publishes to it and waits for Kafka
  (one record batch per partition: `partition_batches`);
- `SourceRecord`, `OutgoingRecord` and `RecordSink` are what the plain logic reads and writes;
- `StallWatchdog` restarts a worker's consuming when faust-streaming stops delivering;
- `register_health` serves the worker's `/health/live` and `/health/ready`;
- `BroadcastConsumer` reads a topic in every worker (outside the group): operators' commands;
- `reading_progress` says which owned source partitions the worker has read to their end;
- `DeadlineWorker` is a Faust worker whose stop ends within `worker.stop_timeout_s`
  (`stop_deadline`).

The corrections to faust-streaming 0.15 behind it (`app`, `changelog_writes`, `durable_table`,
`commit_guard`, `fetch_positions`, `drain_loop`, `loop_consumer`, `consumer_state`,
`stall_watchdog`) are private to this package.
"""

from streams.runtime.app import (
    TributaryApp,
    broker_urls,
    changelog_specs,
    create_faust_app,
    free_port,
    worker_event_loop,
)
from streams.runtime.batch_agent import (
    Batch,
    BatchProcess,
    BatchSize,
    batch_agent,
    batch_size,
    describe_event,
    event_scope,
)
from streams.runtime.broadcast import BroadcastConsumer
from streams.runtime.progress import reading_progress
from streams.runtime.records import OutgoingRecord, RecordSink, SourceRecord, source_key
from streams.runtime.stall_watchdog import Sample, StallWatchdog
from streams.runtime.stop_deadline import DeadlineWorker
from streams.runtime.topics import TopicPublisher, raw_topic
from streams.runtime.worker_health import register_health

__all__ = [
    "Batch",
    "BatchProcess",
    "BatchSize",
    "BroadcastConsumer",
    "DeadlineWorker",
    "OutgoingRecord",
    "RecordSink",
    "Sample",
    "SourceRecord",
    "StallWatchdog",
    "TopicPublisher",
    "TributaryApp",
    "batch_agent",
    "batch_size",
    "broker_urls",
    "changelog_specs",
    "create_faust_app",
    "describe_event",
    "event_scope",
    "free_port",
    "raw_topic",
    "reading_progress",
    "register_health",
    "source_key",
    "worker_event_loop",
]
