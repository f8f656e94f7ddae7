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

import faust
from aiokafka import AIOKafkaProducer

STARTED_S = time.monotonic()

from streams.kafka.catalog import TopicSpec  # noqa: E402
from streams.kafka.topic_admin import delete_topics_blocking, ensure_topics_blocking  # noqa: E402
from streams.runtime import create_faust_app, raw_topic, worker_event_loop  # noqa: E402
from streams.settings import Settings  # noqa: E402

TABLE = "deliveries"
RESULT = "RECOVERED"
CASES = (("memory", "memory://"), ("rocksdb", "rocksdb://"), ("rocksdb restart", "rocksdb://"))


def _entry(n: int, value_bytes: int) -> bytes:
    entry = {"notification_id": f"n-{n}", "state": "delivered", "timeline": []}
    filler = max(value_bytes - len(json.dumps(entry)), 0)
    return json.dumps({**entry, "padding": "x" * filler}).encode()


async def _fill(settings: Settings, topic: str, keys: int, value_bytes: int) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka.bootstrap, linger_ms=5, max_batch_size=256 * 1024
    )
    await producer.start()
    try:
        for start in range(0, keys, 10_000):
            sends = [
                await producer.send(topic, key=f"n-{n}".encode(), value=_entry(n, value_bytes))
                for n in range(start, min(start + 10_000, keys))
            ]
            await asyncio.gather(*sends)
    finally:
        await producer.stop()


def run_case(run: str, store: str, data_dir: str) -> None:
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
    table = app.Table(TABLE, partitions=partitions, key_type=bytes, changelog_topic=changelog)

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
    parser.add_argument("--case", nargs=3, help=argparse.SUPPRESS)  # run, store, data dir
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
            cleanup_policy="compact",
            retention_ms=-1,
        ),
    ]
    ensure_topics_blocking(settings.kafka, specs)
    data_dir = tempfile.mkdtemp(prefix=f"{run}-")
    try:
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
                [sys.executable, __file__, "--case", run, store, case_dir],
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


if __name__ == "__main__":
    raise SystemExit(main())
