"""Ingest's CPU budget per webhook, stage by stage: what `bench_ingest.py`'s total is made of.

`python scripts/bench_ingest_stages.py [--webhooks 5000] [--concurrency 32]` (the stack must be
up). Every stage a signed order webhook goes through in `POST /v1/webhooks/orders` runs here on
its own, with the API's own code and the real Redis and Kafka, and prints the CPU microseconds
this process spends per webhook on it:

- the Standard Webhooks signature check, the JSON parse, the contract validation (pydantic), the
  event built and encoded (Avro, Confluent framing): pure CPU, timed in a loop;
- the Redis rate limit and the duplicate ledger's claim (one script call since session 18,
  `streams.stores.webhook_admission`; the two calls it replaced are timed beside it, in
  alternating rounds so that the machine's drift falls on both alike), the ledger's complete
  (one more) and the Kafka send awaited until acknowledged: `--concurrency` webhooks in flight at
  once, as the API has under load, so the client libraries batch what they can.

What is left of the API's CPU per webhook (`bench_ingest.py` prints it) once these are taken
away is aiohttp's request handling and the middlewares (request id, access log line, metrics,
problem mapping); the bare aiohttp echo of `bench_ingest.py` is its floor.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime

from bench_processes import REPO, fresh_webhook_secret

from api.contracts import validate
from api.delivery import outbound_record
from api.families import BY_NAME
from api.signature import verify
from streams.kafka.catalog import TopicCatalog
from streams.kafka.event_producer import EventProducer, RecordPosition
from streams.kafka.topic_admin import delete_topics_blocking, ensure_topics
from streams.kafka.wire import local_codec
from streams.providers.receipts import parse_json_object
from streams.settings import Settings
from streams.stores.rate_limiter import RateLimiter
from streams.stores.redis_client import redis_client
from streams.stores.webhook_admission import WebhookAdmission
from streams.stores.webhook_ledger import Claim, Receipt, WebhookLedger
from streams.webhook_signature import signed_headers

BODY = (REPO / "examples" / "order_created.json").read_bytes()
FAMILY = BY_NAME["orders"]
TOLERANCE_S = 300


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def report(name: str, cpu_s: float, wall_s: float, count: int) -> float:
    per_us = 1e6 * cpu_s / count
    print(f"  {name:<34} {per_us:8.1f} µs CPU   ({count / wall_s:>9,.0f} /s)", flush=True)
    return per_us


ROUNDS = 5


async def alternating(
    count: int, concurrency: int, steps: dict[str, Callable[[int], Awaitable[object]]]
) -> dict[str, float]:
    """Each of `steps` `count` times, in `ROUNDS` alternating rounds; CPU µs per step each."""
    spent = dict.fromkeys(steps, 0.0)
    walls = dict.fromkeys(steps, 0.0)
    per_round = count // ROUNDS
    for round_ in range(ROUNDS):
        for name, step in steps.items():
            numbers = range(round_ * per_round, (round_ + 1) * per_round)
            cpu_s, wall_s = await in_lanes(numbers, concurrency, step)
            spent[name] += cpu_s
            walls[name] += wall_s
    done = per_round * ROUNDS
    return {name: report(name, spent[name], walls[name], done) for name in steps}


async def in_lanes(
    numbers: Iterable[int], concurrency: int, step: Callable[[int], Awaitable[object]]
) -> tuple[float, float]:
    """`step` for each of `numbers`, `concurrency` at a time, like requests in flight on one API
    process; the CPU and wall seconds it took."""
    pending = iter(numbers)

    async def lane() -> None:
        for n in pending:
            await step(n)

    cpu, wall = _cpu_s(), time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return _cpu_s() - cpu, time.perf_counter() - wall


def timed(name: str, count: int, step: Callable[[int], object]) -> float:
    cpu, wall = _cpu_s(), time.perf_counter()
    for n in range(count):
        step(n)
    return report(name, _cpu_s() - cpu, time.perf_counter() - wall, count)


async def timed_async(
    name: str, count: int, concurrency: int, step: Callable[[int], Awaitable[object]]
) -> float:
    """`count` steps, `concurrency` at a time."""
    cpu_s, wall_s = await in_lanes(range(count), concurrency, step)
    return report(name, cpu_s, wall_s, count)


def bench_settings(run: str) -> Settings:
    base = Settings()
    unlimited = {"orders": {"rate_per_s": 1_000_000, "burst": 1_000_000}}
    return base.model_copy(
        update={
            "topic_prefix": f"benchstages{run}-",
            "webhook": base.webhook.model_copy(update={"secret_orders": fresh_webhook_secret()}),
            "ratelimit": base.ratelimit.model_validate(
                {**base.ratelimit.model_dump(), "sources": unlimited}
            ),
        }
    )


def cpu_stages(settings: Settings, count: int) -> float:
    secret = settings.webhook.secret_for("orders")
    assert secret is not None
    now_s = int(time.time())
    signed = [
        signed_headers(secret.get_secret_value(), f"msg_{uuid.uuid4().hex}", now_s, BODY)
        for _ in range(count)
    ]
    catalog = TopicCatalog(settings.topic_prefix, settings.kafka, settings.dispatch.retry_delays_s)
    codec = local_codec()
    obj = parse_json_object(BODY)
    payload = validate(FAMILY.body_model, obj)
    spent = timed(
        "signature check",
        count,
        lambda n: verify(secret.get_secret_value(), signed[n], BODY, now_s, TOLERANCE_S),
    )
    spent += timed("JSON parse", count, lambda _: parse_json_object(BODY))
    spent += timed("contract validation", count, lambda _: validate(FAMILY.body_model, obj))
    spent += timed(
        "event built, Avro-encoded",
        count,
        lambda n: outbound_record(FAMILY, payload, f"msg_{n}", catalog, datetime.now(UTC), codec),
    )
    return spent


async def io_stages(settings: Settings, count: int, concurrency: int) -> float:
    client = redis_client(settings.redis)
    limiter = RateLimiter(client, settings.ratelimit, settings.topic_prefix)
    ledger = WebhookLedger(
        client,
        settings.webhook,
        topic_prefix=settings.topic_prefix,
        delivery_timeout_s=settings.kafka.delivery_timeout_s,
    )
    catalog = TopicCatalog(settings.topic_prefix, settings.kafka, settings.dispatch.retry_delays_s)
    topic = catalog.for_topic("orders.events").name
    await ensure_topics(settings.kafka, [catalog.for_topic("orders.events")])
    admission = WebhookAdmission(limiter, ledger)
    claims: dict[int, Claim] = {}

    async def admit(n: int) -> None:
        admitted = await admission.admit("orders", f"msg_{n}")
        assert isinstance(admitted.outcome, Claim)
        claims[n] = admitted.outcome

    async def limit_then_claim(n: int) -> None:
        await limiter.enforce("orders")
        claimed = await ledger.claim("orders", f"two-calls_{n}")
        assert isinstance(claimed, Claim)

    async def complete(n: int) -> None:
        await ledger.complete(claims[n], Receipt(uuid.uuid4(), RecordPosition(topic, 0, n)))

    try:
        one_call, two_calls = "Redis limit and claim, one call", "  (as two calls, before)"
        admitting = await alternating(
            count, concurrency, {one_call: admit, two_calls: limit_then_claim}
        )
        spent = admitting[one_call]
        spent += await timed_async("Redis ledger complete", len(claims), concurrency, complete)
        async with EventProducer(settings.kafka) as producer:
            await producer.send(topic, b"warm-up", BODY)
            spent += await timed_async(
                "Kafka send, acknowledged",
                count,
                concurrency,
                lambda n: producer.send(topic, f"ord-{n}".encode(), BODY),
            )
    finally:
        await client.aclose()
        delete_topics_blocking(settings.kafka, [settings.topic_prefix])
    return spent


async def bench(args: argparse.Namespace) -> int:
    settings = bench_settings(uuid.uuid4().hex[:8])
    print(f"{args.webhooks} webhooks per stage, {args.concurrency} in flight for the I/O stages")
    spent = cpu_stages(settings, args.webhooks)
    spent += await io_stages(settings, args.webhooks, args.concurrency)
    print(f"  {'all stages':<34} {spent:8.1f} µs CPU")
    print(json.dumps({"stages_cpu_us": round(spent, 1)}))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--webhooks", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=32)
    return asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
