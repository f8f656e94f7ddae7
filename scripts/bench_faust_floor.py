"""What Faust itself costs per record, with agents that do nothing: the floor under every agent.

`python scripts/bench_faust_floor.py` (the stack must be up). Each case runs in a child process
of its own, on a fresh topic of `--records` records of 300 bytes (6 partitions), consumed the
way our agents consume: `batch_agent`s taking batches of 500 within 0.2 s, on the worker's app.

- `consume xN`: N agents subscribed to the topic (every record is one event per agent);
- `consume+produce`: one agent that also sends each record on through `TopicPublisher` (the
  app's one producer, acks=all), as our agents send their outputs.

It prints CPU microseconds per record (user + system of the worker process, from its first
batch to its last) and records/s. The notification loop's cost is then roughly these figures
times the records one notification makes each worker consume and produce (see the README's
benchmark section), which is why that loop's ceiling on a 2-core machine is set by record
counts, not by any one function.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import faust
from aiokafka import AIOKafkaProducer

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from streams.kafka.catalog import TopicSpec  # noqa: E402
from streams.kafka.topic_admin import delete_topics_blocking, ensure_topics_blocking  # noqa: E402
from streams.runtime import (  # noqa: E402
    BatchSize,
    OutgoingRecord,
    TopicPublisher,
    batch_agent,
    create_faust_app,
    raw_topic,
    worker_event_loop,
)
from streams.settings import Settings  # noqa: E402

BATCH_EVENTS, BATCH_WINDOW_S = 500, 0.2
VALUE_BYTES = 300
RESULT = "FLOOR"


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _fill(settings: Settings, topic: str, records: int) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka.bootstrap, linger_ms=5, max_batch_size=256 * 1024
    )
    await producer.start()
    try:
        value = os.urandom(VALUE_BYTES)
        sends = [
            await producer.send(topic, key=str(n % 1000).encode(), value=value)
            for n in range(records)
        ]
        await asyncio.gather(*sends)
    finally:
        await producer.stop()


class Meter:
    """Counts events across agents and prints one result line when all have arrived."""

    def __init__(self, expected: int, label: str) -> None:
        self.expected, self.label = expected, label
        self.seen = 0
        self.started: tuple[float, float] | None = None

    def batch(self, size: int) -> None:
        if self.started is None:
            self.started = (time.monotonic(), _cpu_s())
        self.seen += size
        if self.seen >= self.expected:
            wall_s = time.monotonic() - self.started[0]
            cpu_s = _cpu_s() - self.started[1]
            # To the real stdout: Faust redirects `print` into its log.
            sys.__stdout__.write(
                f"{RESULT} {self.label:<18} {self.seen / wall_s:>9,.0f} records/s"
                f"  {cpu_s / self.seen * 1e6:6.1f} µs CPU per record\n"
            )
            sys.__stdout__.flush()
            os._exit(0)  # the parent deletes the topics


def run_case(run: str, agents: int, produce: bool, records: int) -> None:
    """One case in this process: fill a topic, consume it, print, exit."""
    settings = Settings()
    loop = worker_event_loop()
    asyncio.set_event_loop(loop)
    source, sink = f"floor-{run}-in", f"floor-{run}-out"
    specs = [
        TopicSpec(name=name, key="n", partitions=settings.kafka.partitions, replication_factor=1)
        for name in (source, sink)
    ]
    ensure_topics_blocking(settings.kafka, specs)
    loop.run_until_complete(_fill(settings, source, records))
    # The worker's own app (its guards included), its tables in memory, under an id of its own.
    worker = settings.worker.model_copy(update={"app_id": f"floor-{run}", "store": "memory://"})
    Path(worker.data_dir).mkdir(parents=True, exist_ok=True)
    app = create_faust_app(settings.model_copy(update={"worker": worker}))
    label = "consume+produce" if produce else f"consume x{agents}"
    meter = Meter(records * agents, label)
    topic = raw_topic(app, source)
    out = TopicPublisher(raw_topic(app, sink))

    async def forward(events: Any) -> None:
        if produce:
            await out.send_all([OutgoingRecord(e.message.key, e.message.value) for e in events])
        meter.batch(len(events))

    for n in range(agents):
        batch_agent(app, topic, f"floor_{n}", forward, BatchSize(BATCH_EVENTS, BATCH_WINDOW_S))
    faust.Worker(app, loglevel="warning", loop=loop).execute_from_commandline()


CASES: Sequence[tuple[int, bool]] = ((1, False), (3, False), (1, True))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        run, agents, produce = args.case.split(",")
        run_case(run, int(agents), produce == "produce", args.records)
        return 0
    for agents, produce in CASES:
        run = uuid.uuid4().hex[:8]
        case = f"{run},{agents},{'produce' if produce else 'consume'}"
        try:
            child = subprocess.run(
                [sys.executable, __file__, "--records", str(args.records), "--case", case],
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
        finally:
            delete_topics_blocking(Settings().kafka, [f"floor-{run}"])
        lines = [line for line in child.stdout.splitlines() if line.startswith(RESULT)]
        if not lines:
            print(f"case {case} failed:\n{child.stdout[-2000:]}\n{child.stderr[-2000:]}")
            return 1
        print(lines[0].removeprefix(RESULT).strip())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
