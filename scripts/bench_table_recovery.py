"""How long a worker takes to recover a table from its changelog: in-memory store vs RocksDB.

`python scripts/bench_table_recovery.py [--keys 200000] [--value-bytes 700]` (the stack must be
up). It fills a compacted changelog with `--keys` entries of about `--value-bytes` of JSON (a
`deliveries` entry is about that), then starts a worker on it (the worker's own app, the table
and one idle agent, as `agents.worker` builds them) and times it until Faust says it has
recovered and started, three ways, each in a process of its own:

- `memory://`, fresh: replays the whole changelog (every start of a memory store is this one);
- `rocksdb://`, fresh data directory: replays the whole changelog into RocksDB;
- `rocksdb://`, restarted on that directory: reads only what lies past the offsets it persisted.

It prints wall and CPU seconds from process start to ready, the keys the table holds, and the
process's peak resident memory.

`--expired-keys N [--retention-s 30]`: the table forgets keys as the worker's per-notification
tables do (`DurableTable`'s `retention_s`: the changelog compacted and deleted by time, a TTL
RocksDB store). The changelog gets N keys first; once Kafka has deleted their segments (its
retention check runs every `log.retention.check.interval.ms`, 5 minutes by default; the script
waits for the partitions' start offsets to pass them), `--keys` more; then the same three starts.
What a fresh worker reads is then the keys changed within the retention, not every key ever
written.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import faust
from aiokafka import AIOKafkaProducer
from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec  # type: ignore[attr-defined]

STARTED_S = time.monotonic()

from streams.kafka.catalog import TopicSpec  # noqa: E402
from streams.kafka.topic_admin import delete_topics_blocking, ensure_topics_blocking  # noqa: E402
from streams.runtime import create_faust_app, raw_topic, worker_event_loop  # noqa: E402
from streams.settings import Settings  # noqa: E402

TABLE = "deliveries"
RESULT = "RECOVERED"
# Segments close this often in the expiry run: Kafka deletes closed segments only.
SEGMENT_MS = 5000
# Kafka checks retention every 5 minutes by default (`log.retention.check.interval.ms`).
EXPIRY_DEADLINE_S = 900.0
CASES = (("memory", "memory://"), ("rocksdb", "rocksdb://"), ("rocksdb restart", "rocksdb://"))


def _entry(n: int, value_bytes: int) -> bytes:
    entry = {"notification_id": f"n-{n}", "state": "delivered", "timeline": []}
    filler = max(value_bytes - len(json.dumps(entry)), 0)
    return json.dumps({**entry, "padding": "x" * filler}).encode()


async def _fill(
    settings: Settings, topic: str, keys: int, value_bytes: int, first: int = 0
) -> dict[int, int]:
    """Write keys `n-<first>`… (`keys` of them); per partition, the offset of the first."""
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka.bootstrap, linger_ms=5, max_batch_size=256 * 1024
    )
    firsts: dict[int, int] = {}
    await producer.start()
    try:
        for start in range(first, first + keys, 10_000):
            sends = [
                await producer.send(topic, key=f"n-{n}".encode(), value=_entry(n, value_bytes))
                for n in range(start, min(start + 10_000, first + keys))
            ]
            for sent in await asyncio.gather(*sends):
                firsts.setdefault(sent.partition, sent.offset)
    finally:
        await producer.stop()
    return firsts


def _start_offsets(settings: Settings, topic: str) -> dict[int, int]:
    admin = AdminClient({"bootstrap.servers": settings.kafka.bootstrap})
    partitions = admin.list_topics(topic, timeout=10).topics[topic].partitions
    asked = {TopicPartition(topic, p): OffsetSpec.earliest() for p in partitions}
    found = admin.list_offsets(asked, request_timeout=10)
    return {tp.partition: future.result().offset for tp, future in found.items()}


async def _expire(settings: Settings, topic: str, keys: int, value_bytes: int) -> float:
    """Fill `keys` keys, close their segments, and wait until Kafka has deleted them: the
    seconds waited."""
    await _fill(settings, topic, keys, value_bytes, first=-keys)
    await asyncio.sleep(SEGMENT_MS / 1000 + 1)  # the next append closes their segment
    rolls = 100 * settings.kafka.partitions  # an append to every partition
    ends = await _fill(settings, topic, rolls, value_bytes, first=-keys - rolls)
    waited = time.monotonic()
    while True:
        starts = _start_offsets(settings, topic)
        if all(starts[p] >= offset for p, offset in ends.items()):
            return time.monotonic() - waited
        if time.monotonic() - waited > EXPIRY_DEADLINE_S:
            raise RuntimeError(
                f"Kafka had not deleted the expired keys of {topic} after"
                f" {EXPIRY_DEADLINE_S:.0f} s (start offsets {starts}, wanted {ends})"
            )
        await asyncio.sleep(5)


def run_case(run: str, store: str, data_dir: str, retention_s: str = "0") -> None:
    """One start in this process: build the app, start the worker, print once it is ready.

    Each store has an app id (a consumer group) of its own; all read one changelog."""
    base = Settings()
    app_id = f"{run}-{store.removesuffix('://')}"
    worker = base.worker.model_copy(
        update={"app_id": app_id, "store": store, "data_dir": data_dir, "standby_replicas": 0}
    )
    settings = base.model_copy(update={"worker": worker})
    loop = worker_event_loop()
    asyncio.set_event_loop(loop)
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    app = create_faust_app(settings)
    partitions = settings.kafka.partitions
    changelog = app.topic(
        f"{run}-{TABLE}-changelog", partitions=partitions, compacting=True, deleting=False
    )
    table = app.Table(
        TABLE,
        partitions=partitions,
        key_type=bytes,
        changelog_topic=changelog,
        retention_s=int(retention_s) or None,
    )

    async def idle(stream: faust.StreamT[bytes]) -> None:
        async for _ in stream:
            pass

    app.agent(raw_topic(app, f"{run}-source"), name="idle")(idle)

    class Timed(faust.Worker):
        async def on_startup_finished(self) -> None:
            await super().on_startup_finished()
            wall_s = time.monotonic() - STARTED_S
            usage = resource.getrusage(resource.RUSAGE_SELF)
            cpu_s = usage.ru_utime + usage.ru_stime
            keys = len(table)
            sys.__stdout__.write(
                f"{RESULT} {wall_s:.1f} {cpu_s:.1f} {keys} {usage.ru_maxrss // 1024}\n"
            )
            sys.__stdout__.flush()
            # Stopped, not killed: its consumer leaves the group, so the next start does not
            # wait out a session timeout for it.
            self.stopping = asyncio.ensure_future(self.stop())

    Timed(app, loglevel="warning", loop=loop).execute_from_commandline()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=200_000)
    parser.add_argument("--value-bytes", type=int, default=700)
    parser.add_argument("--expired-keys", type=int, default=0)
    parser.add_argument("--retention-s", type=int, default=30)
    parser.add_argument("--case", nargs=4, help=argparse.SUPPRESS)  # run, store, dir, retention
    args = parser.parse_args()
    if args.case:
        run_case(*args.case)
        return 0
    settings = Settings()
    run = f"recovery-{uuid.uuid4().hex[:8]}"
    partitions = settings.kafka.partitions
    specs = [
        TopicSpec(name=f"{run}-source", key="n", partitions=partitions, replication_factor=1),
        TopicSpec(
            name=f"{run}-{TABLE}-changelog",
            key="notification id",
            partitions=partitions,
            replication_factor=settings.kafka.replication_factor,
            **_cleanup(args.expired_keys, args.retention_s),
        ),
    ]
    ensure_topics_blocking(settings.kafka, specs)
    data_dir = tempfile.mkdtemp(prefix=f"{run}-")
    try:
        retention_s = args.retention_s if args.expired_keys else 0
        if args.expired_keys:
            waited_s = asyncio.run(
                _expire(settings, specs[1].name, args.expired_keys, args.value_bytes)
            )
            print(
                f"changelog: {args.expired_keys:,} keys written, then deleted by Kafka"
                f" (retention {retention_s} s; {waited_s:.0f} s waited for its retention check)"
            )
        filled = time.monotonic()
        asyncio.run(_fill(settings, specs[1].name, args.keys, args.value_bytes))
        print(
            f"changelog: {args.keys:,} keys of ~{args.value_bytes} bytes"
            f" ({time.monotonic() - filled:.1f} s to produce)"
        )
        print(f"{'store':<16} {'ready after':>11} {'CPU':>8} {'keys':>9} {'peak RSS':>9}")
        for label, store in CASES:
            case_dir = str(Path(data_dir) / store.removesuffix("://"))
            child = subprocess.run(
                [sys.executable, __file__, "--case", run, store, case_dir, str(retention_s)],
                capture_output=True,
                text=True,
                timeout=900,
                check=False,
            )
            lines = [line for line in child.stdout.splitlines() if line.startswith(RESULT)]
            if not lines:
                print(f"{label} failed:\n{child.stdout[-2000:]}\n{child.stderr[-2000:]}")
                return 1
            wall_s, cpu_s, keys, rss_mb = lines[0].split()[1:]
            print(f"{label:<16} {wall_s:>9} s {cpu_s:>6} s {int(keys):>9,} {rss_mb:>6} MB")
    finally:
        delete_topics_blocking(settings.kafka, [run])
    return 0


def _cleanup(expired_keys: int, retention_s: int) -> dict[str, Any]:
    if not expired_keys:
        return {"cleanup_policy": "compact", "retention_ms": -1}
    return {
        "cleanup_policy": "compact,delete",
        "retention_ms": retention_s * 1000,
        "segment_ms": SEGMENT_MS,
    }


if __name__ == "__main__":
    raise SystemExit(main())
