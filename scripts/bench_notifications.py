"""Benchmark the whole notification loop: user.created -> route -> dispatch -> provider sandbox ->
signed receipts -> ingest API -> track_deliveries -> PostgreSQL.

`make bench-notifications` (or `python scripts/bench_notifications.py --rate 1000 --duration-s
60`). It starts its own worker, API and sandbox on free ports, its own topics (a fresh
prefix) and its own PostgreSQL database (dropped at the end), so it runs beside `make dev` and
the tests and measures no earlier run's rows; the stack must be up (`make stack`).
It produces `user.created` events at a fixed rate (each is one welcome email), then waits for
them to be materialized as delivered, and prints what PostgreSQL says:

- sustained notifications/s: delivered notifications divided by the time from the first
  produced event to the last one's row in PostgreSQL (`materialized_at`), i.e. what the whole
  loop kept up with; beside it, the provider's rate (to the last `delivered_at`), which
  overstates a saturated loop: receipts still queued for tracking are not done;
- event->delivered latency p50/p95/p99: `delivered_at - caused_at` per notification
  (`caused_at` is the user.created's `occurred_at`), computed by `percentile_cont`.

These are the provider's delivery times as reported in receipts (the sandbox reports them after
its `receipt_delay_s`), so the latency includes that delay, as it would with a real provider.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from bench_processes import (
    Child,
    fresh_webhook_secret,
    records_consumed,
    records_on_topics,
    sandboxed_sections,
    settings_env,
    stack_pids,
    topic_partitions,
    tree_cpu_s,
)
from own_database import own_database

from schemas.users import UserEvent
from streams.kafka.catalog import TopicCatalog
from streams.kafka.codec import wire_codec
from streams.kafka.topic_admin import (
    delete_topics_blocking,
    ensure_topics,
)
from streams.runtime import free_port
from streams.settings import Settings
from streams.stores.database import create_engine

READY_DEADLINE_S = 180.0
PROFILE_WARMUP_S = 5.0
WORKER_READY = "tributary worker ready"
SANDBOX_READY = "Tributary provider sandbox ready"

# Where the time goes: each transition's time after the causing event, and how long after its
# state's time the row reached PostgreSQL.
_STAGES = sa.text(
    """
    SELECT t.state, count(*) AS n,
           percentile_cont(0.5) WITHIN GROUP (
               ORDER BY extract(epoch FROM t.occurred_at - d.caused_at)) AS p50_s,
           percentile_cont(0.95) WITHIN GROUP (
               ORDER BY extract(epoch FROM t.occurred_at - d.caused_at)) AS p95_s
      FROM notification_transitions t JOIN notification_deliveries d USING (notification_id)
     WHERE d.user_id LIKE :users
     GROUP BY t.state ORDER BY p50_s
    """
)
_MATERIALIZED = sa.text(
    """
    SELECT percentile_cont(0.5) WITHIN GROUP (
               ORDER BY extract(epoch FROM materialized_at - state_at)) AS p50_s,
           percentile_cont(0.95) WITHIN GROUP (
               ORDER BY extract(epoch FROM materialized_at - state_at)) AS p95_s
      FROM notification_deliveries WHERE user_id LIKE :users AND state = 'delivered'
    """
)

_RESULTS = sa.text(
    """
    SELECT count(*) FILTER (WHERE state = 'delivered') AS delivered,
           count(*) AS tracked,
           max(delivered_at) AS last_delivered_at,
           max(materialized_at) FILTER (WHERE state = 'delivered') AS last_materialized_at,
           percentile_cont(ARRAY[0.5, 0.95, 0.99]::float8[]) WITHIN GROUP (
               ORDER BY extract(epoch FROM delivered_at - caused_at)
           ) FILTER (WHERE delivered_at IS NOT NULL AND caused_at IS NOT NULL) AS latency_s
      FROM notification_deliveries
     WHERE user_id LIKE :users
    """
)


def bench_settings(base: Settings, run: str, data_dir: Path) -> Settings:
    """`base` on its own topics, consumer group, ports and secrets."""
    updates: dict[str, Any] = {
        "topic_prefix": f"bench{run}-",
        "webhook": base.webhook.model_copy(
            update={
                "secret_users": fresh_webhook_secret(),
                "secret_providers": fresh_webhook_secret(),
            }
        ),
        "worker": base.worker.model_copy(
            update={
                "app_id": f"tributary-bench-{run}",
                "web_port": free_port("127.0.0.1"),
                "data_dir": str(data_dir),
            }
        ),
        **sandboxed_sections(base, f"bench-{run}"),
    }
    return base.model_copy(update=updates)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own URL
            return bool(response.status < 500)
    except (urllib.error.URLError, OSError):
        return False


def _spent(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else after - before


def worker_env(settings: Settings, n: int, log_dir: Path) -> dict[str, str]:
    """Workers of one group, each with its own web port and data directory."""
    if n == 0:
        return {}
    return {
        "TRIBUTARY_WORKER_WEB_PORT": str(free_port(settings.worker.web_host)),
        "TRIBUTARY_WORKER_DATA_DIR": str(log_dir / f"worker{n}-data"),
    }


def floor_worker_command(args: argparse.Namespace) -> tuple[str, ...]:
    """A floor worker's command in place of the agents, or () for them: `floor_worker.py`
    (aiokafka alone) or `faust_floor_worker.py` (the same work on the agents' Faust runtime),
    with `--state` for the `state` variants."""
    if not args.floor_worker:
        return ()
    script = "faust_floor_worker.py" if args.floor_worker.startswith("faust") else "floor_worker.py"
    state = ["--state"] if args.floor_worker.endswith("state") else []
    return (f"scripts/{script}", *state)


def wait_ready(children: list[Child], api_url: str) -> None:
    *workers, sandbox, _api = children
    deadline = time.monotonic() + READY_DEADLINE_S
    while True:
        for child in children:
            child.check()
        if (
            all(WORKER_READY in worker.log() for worker in workers)
            and SANDBOX_READY in sandbox.log()
            and _answers(f"{api_url}/health/ready")
        ):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"not ready within {READY_DEADLINE_S:.0f} s")
        time.sleep(0.25)


def user_created(user_id: str) -> UserEvent:
    now = datetime.now(UTC)
    event_id = uuid.uuid4()
    return UserEvent.model_validate(
        {
            "event_id": event_id,
            "event_type": "user.created",
            "occurred_at": now,
            "ingested_at": now,
            "source": "bench",
            "correlation_id": str(event_id),
            "payload": {
                "user_id": user_id,
                "email": f"{user_id}@example.com",
                "locale": "en",
                "time_zone": "UTC",
            },
        }
    )


async def produce(settings: Settings, run: str, rate: int, duration_s: float) -> int:
    """`rate` user.created per second for `duration_s`, in 100 ms ticks; the count produced."""
    codec = await wire_codec(settings)
    topic = TopicCatalog(settings.topic_prefix, settings.kafka).for_topic("users.events").name
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap, linger_ms=5)
    await producer.start()
    sent = 0
    try:
        start = time.monotonic()
        while (elapsed := time.monotonic() - start) < duration_s:
            due = min(int(elapsed * rate) + max(rate // 10, 1), int(duration_s * rate))
            deliveries = []
            for n in range(sent, due):
                user_id = f"bench-{run}-{n}"
                value = codec.encode(user_created(user_id))
                deliveries.append(await producer.send(topic, value, key=user_id.encode()))
            await asyncio.gather(*deliveries)
            sent = due
            await asyncio.sleep(max(0.0, start + (sent / rate) - time.monotonic()))
    finally:
        await producer.stop()
    return sent


async def results(settings: Settings, run: str, stages: bool = False) -> dict[str, Any]:
    engine = create_engine(settings.database)
    users = {"users": f"bench-{run}-%"}
    try:
        async with engine.connect() as conn:
            found = dict((await conn.execute(_RESULTS, users)).mappings().one())
            if stages:
                found["stages"] = (await conn.execute(_STAGES, users)).mappings().all()
                found["materialized"] = (await conn.execute(_MATERIALIZED, users)).mappings().one()
            return found
    finally:
        await engine.dispose()


async def drain(
    settings: Settings, run: str, produced: int, drain_s: float, children: list[Child]
) -> dict[str, Any]:
    deadline = time.monotonic() + drain_s
    while True:
        for child in children:
            child.check()
        found = await results(settings, run)
        print(
            f"  delivered {found['delivered']}/{produced} (tracked {found['tracked']})", flush=True
        )
        if found["delivered"] >= produced or time.monotonic() > deadline:
            return found
        await asyncio.sleep(5.0)


async def bench(args: argparse.Namespace) -> int:
    """The run on a database of its own (`own_database`: what earlier runs left in a shared one
    made PostgreSQL's figures grow with every run), dropped afterwards."""
    run = uuid.uuid4().hex[:8]
    base = Settings()
    async with own_database(base.database, f"tributary_bench_{run}") as database:
        return await bench_run(args, run, base.model_copy(update={"database": database}))


async def bench_run(args: argparse.Namespace, run: str, base: Settings) -> int:
    log_dir = Path(tempfile.mkdtemp(prefix=f"bench-notifications-{run}-"))
    settings = bench_settings(base, run, log_dir / "worker-data")
    catalog = TopicCatalog(settings.topic_prefix, settings.kafka, settings.dispatch.retry_delays_s)
    await ensure_topics(settings.kafka, catalog.all())
    env = settings_env(settings)
    api_url = f"http://127.0.0.1:{settings.api.port}"
    workers = [
        Child(
            f"worker{n}",
            "agents",
            env | worker_env(settings, n, log_dir),
            log_dir,
            profile=args.profile_worker,
            script=floor_worker_command(args),
        )
        for n in range(args.workers)
    ]
    children = [
        *workers,
        Child("sandbox", "sandbox", env, log_dir),
        Child("api", "api", env, log_dir),
    ]
    try:
        print(f"starting worker, sandbox and API (logs in {log_dir})", flush=True)
        await asyncio.to_thread(wait_ready, children, api_url)
        print(f"producing {args.rate} user.created/s for {args.duration_s:g} s", flush=True)
        started = datetime.now(UTC)
        cpu_ready = {child.name: child.cpu_s() for child in children}
        services = stack_pids()
        cpu_ready |= {name: tree_cpu_s(pid) for name, pid in services.items()}
        cpu_ready["bench"] = time.process_time()
        profiling = (
            asyncio.create_task(_profile(workers[0], args.py_spy_s, log_dir, args.py_spy_gil))
            if args.py_spy_s
            else None
        )
        produced = await produce(settings, run, args.rate, args.duration_s)
        await drain(settings, run, produced, args.drain_s, children)
        found = await results(settings, run, stages=True)
        topics = await topic_partitions(settings, (settings.topic_prefix, settings.worker.app_id))
        found["records"] = await records_on_topics(settings, topics)
        found["consumed"] = await records_consumed(settings, settings.worker.app_id, topics)
        if profiling is not None:
            found["profile"] = await profiling
        cpu_now = {child.name: child.cpu_s() for child in children}
        cpu_now |= {name: tree_cpu_s(pid) for name, pid in services.items()}
        cpu_now["bench"] = time.process_time()
        found["cpu_s"] = {name: _spent(cpu_ready[name], cpu_now[name]) for name in cpu_now}
    finally:
        for child in children:
            child.stop()
        delete_topics_blocking(settings.kafka, [settings.topic_prefix, settings.worker.app_id])
    report(produced, started, found)
    return 0 if found["delivered"] >= produced else 1


async def _profile(worker: Child, seconds: int, log_dir: Path, gil_only: bool) -> Path:
    """py-spy samples of `worker` for `seconds`, from a few seconds into the load (steady state),
    folded stacks (`frame;frame;... count`) for `scripts/profile_summary.py`.

    `gil_only`: only the thread holding the GIL is sampled. Without it, a thread waiting for the
    GIL inside a C call (a thread after a socket write, say) is sampled as busy there: Faust's
    consumer thread, before `streams.runtime.loop_consumer`, showed its fetch-request writes as
    3 % of samples at ~35 requests/s."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    folded = log_dir / "worker0.folded"
    await asyncio.sleep(PROFILE_WARMUP_S)
    command = [py_spy, "record", "--pid", str(worker.process.pid), "--duration", str(seconds)]
    command += ["--rate", "50", "--format", "raw", "--output", str(folded), "--nonblocking"]
    if gil_only:
        command.append("--gil")
    done = await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"py-spy failed ({done.returncode}): {done.stderr[-2000:]}")
    return folded


def report(produced: int, started: datetime, found: dict[str, Any]) -> None:
    delivered = found["delivered"]
    last = found["last_materialized_at"]
    span_s = (last - started).total_seconds() if last is not None else None
    rate = delivered / span_s if span_s else 0.0
    provider = found["last_delivered_at"]
    provider_s = (provider - started).total_seconds() if provider is not None else None
    p50, p95, p99 = found["latency_s"] or (None, None, None)
    print(f"produced            {produced} user.created (one welcome email each)")
    print(f"delivered           {delivered} (tracked in PostgreSQL: {found['tracked']})")
    if span_s is not None:
        print(
            f"sustained           {rate:,.0f} notifications/s over {span_s:.1f} s (in PostgreSQL)"
        )
    if provider_s:
        print(f"provider deliveries {delivered / provider_s:,.0f} /s over {provider_s:.1f} s")
    if p50 is not None:
        print(f"event->delivered    p50 {p50:.3f} s  p95 {p95:.3f} s  p99 {p99:.3f} s")
    print("stages (time after the causing event):")
    for stage in found["stages"]:
        print(
            f"  {stage['state']:<10} {stage['n']:>7}  p50 {stage['p50_s']:8.3f} s"
            f"  p95 {stage['p95_s']:8.3f} s"
        )
    lag = found["materialized"]
    if lag["p50_s"] is not None:
        print(
            f"  delivered -> row in PostgreSQL  p50 {lag['p50_s']:.3f} s  p95 {lag['p95_s']:.3f} s"
        )
    cpu = {name: s for name, s in found.get("cpu_s", {}).items() if s is not None}
    if cpu and delivered:
        print("CPU seconds per 1,000 delivered (from the first event produced to the end):")
        for name, seconds in cpu.items():
            print(f"  {name:<10} {1000 * seconds / delivered:8.2f} s  ({seconds:.1f} s in all)")
        total_s = 1000 * sum(cpu.values()) / delivered
        print(
            f"  all        {total_s:8.2f} s  (1,000 notifications/s would keep about"
            f" {total_s:.1f} cores busy; this machine has {os.cpu_count()})"
        )
    if delivered:
        budget(delivered, cpu, found["records"], found["consumed"])
    if "profile" in found:
        print(f"worker0 profile (folded stacks): {found['profile']}")


def budget(delivered: int, cpu: dict[str, float], records: dict[str, int], consumed: int) -> None:
    """The per-notification budget the loop is judged by, from the topics' offsets and /proc."""
    worker_s = sum(seconds for name, seconds in cpu.items() if name.startswith("worker"))
    print("per notification (records from the topics' offsets):")
    print(f"  records produced  {sum(records.values()) / delivered:6.2f}")
    for name, count in sorted(records.items(), key=lambda item: -item[1]):
        if count:
            print(f"    {count / delivered:6.2f}  {name}")
    print(f"  records consumed  {consumed / delivered:6.2f}  (by the workers' group)")
    print(f"  worker CPU        {1000 * worker_s / delivered:6.2f} ms")
    if "kafka" in cpu:
        print(f"  Kafka CPU         {1000 * cpu['kafka'] / delivered:6.2f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=1000, help="user.created per second")
    parser.add_argument("--duration-s", type=float, default=60.0)
    parser.add_argument("--drain-s", type=float, default=120.0, help="wait for stragglers")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (one group)")
    parser.add_argument(
        "--profile-worker",
        action="store_true",
        help="run the workers under cProfile (worker<n>.prof in the log directory)",
    )
    parser.add_argument(
        "--py-spy-s",
        type=int,
        default=0,
        help="sample worker0 with py-spy for this many seconds during the load",
    )
    parser.add_argument(
        "--py-spy-gil",
        action="store_true",
        help="sample only the thread holding the GIL (CPU spent in Python, by any thread)",
    )
    parser.add_argument(
        "--floor-worker",
        nargs="?",
        const="bare",
        choices=("bare", "state", "faust", "faust-state"),
        help="run scripts/floor_worker.py (the least a worker can do; `state`: with the least"
        " crash-exact state) in place of the agents; `faust`, `faust-state`: the same work as"
        " agents of the Faust runtime (scripts/faust_floor_worker.py)",
    )
    return asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
