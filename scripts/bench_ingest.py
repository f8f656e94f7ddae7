"""Ingest at saturation: signed webhooks to a Kafka-acknowledged 202, beside a bare aiohttp echo.

`python scripts/bench_ingest.py [--clients 32] [--duration-s 20]` (the stack must be up). It
starts the API on its own port and topics, and a bare aiohttp server that parses a JSON body and
answers 202 (the least an aiohttp endpoint does), both as child processes; then, for each in
turn, `--clients` keep-alive clients POST for `--duration-s` (after a warm-up that is not
counted): to the API, `POST /v1/webhooks/orders` with a fresh Standard Webhooks signature each
(a new webhook-id, so none is a duplicate), each answered only once Kafka acknowledged the record.

It prints requests/s, p50 and p99 of both, the ratio API / echo (the share of what aiohttp itself
allows on this machine that ingest keeps) and the API's CPU per request. The clients run in this
process, on the same cores as the servers, for both servers alike.

`--floor` also measures, in the same run, the least any endpoint that answers only after Kafka
acknowledged the write can do with aiohttp and aiokafka: a bare server that parses the body,
sends it with one idempotent `acks=all` producer (the API's settings) and answers 202 once the
broker acknowledged it, with nothing else (no signature, contract, Avro, Redis, middleware or
log); and the same with the least a webhook ledger that answers retries as duplicates adds:
a claim before the send and its completion after it, each one Redis script call of one `SET`,
batched across concurrent requests as the API's are (`ScriptCalls`). Their ratios to the echo
are the ceiling the API's own ratio can reach on this machine with these libraries.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from bench_processes import REPO, Child, fresh_webhook_secret, settings_env

from streams.kafka.catalog import TopicCatalog
from streams.kafka.topic_admin import delete_topics_blocking, ensure_topics
from streams.migrations import runner as migrate
from streams.runtime import free_port
from streams.settings import Settings
from streams.webhook_signature import sign

READY_DEADLINE_S = 60.0
WARMUP_S = 3.0
BODY = json.loads((REPO / "examples" / "order_created.json").read_text())


@dataclass
class Run:
    """What one server answered during the measured window."""

    latencies_s: list[float] = field(default_factory=list)
    failures: dict[int, int] = field(default_factory=dict)
    wall_s: float = 0.0

    def line(self, name: str) -> str:
        done = len(self.latencies_s)
        rate = done / self.wall_s if self.wall_s else 0.0
        quantiles = statistics.quantiles(self.latencies_s, n=100) if done > 1 else [0.0] * 99
        failed = f"  non-2xx {self.failures}" if self.failures else ""
        return (
            f"{name:<11} {rate:>8,.0f} req/s  p50 {1000 * quantiles[49]:6.1f} ms"
            f"  p99 {1000 * quantiles[98]:6.1f} ms  ({done} requests){failed}"
        )

    @property
    def rate(self) -> float:
        return len(self.latencies_s) / self.wall_s if self.wall_s else 0.0


def echo_server(port: int) -> None:
    """The bare server: read the body, parse it, answer 202 with a small JSON body."""

    async def accept(request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        return web.json_response({"status": "accepted", "type": body.get("type")}, status=202)

    app = web.Application()
    app.add_routes([web.post("/", accept)])
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def floor_server(port: int, topic: str, with_ledger: bool) -> None:
    """The least an acknowledged ingest does: parse, (claim,) send, (complete,) answer; with the
    API's own producer driver and the ledger's own kind of Redis client."""
    from streams.kafka.event_producer import AioKafkaDriver
    from streams.stores.redis_client import redis_client
    from streams.stores.script_calls import ScriptCalls

    settings = Settings()
    producer_key: web.AppKey[AioKafkaDriver] = web.AppKey("producer", AioKafkaDriver)
    ledger_key: web.AppKey[Callable[[str, str], Awaitable[Any]]] = web.AppKey("ledger")

    async def clients(app: web.Application) -> AsyncIterator[None]:
        producer = AioKafkaDriver(settings.kafka)
        await producer.start()
        redis = redis_client(settings.redis, reply_timeouts=False)
        calls = ScriptCalls(redis, timeout_s=settings.redis.socket_timeout_s)
        scripts = {
            "claim": redis.register_script(LEDGER_CLAIM_LUA),
            "complete": redis.register_script(LEDGER_COMPLETE_LUA),
        }

        def ledger(step: str, key: str) -> Awaitable[Any]:
            return calls.run(scripts[step], [f"floor:{key}"], [])

        app[producer_key] = producer
        app[ledger_key] = ledger
        yield
        await producer.stop()
        await redis.aclose()

    async def accept(request: web.Request) -> web.Response:
        body = await request.read()
        event = json.loads(body)
        key = request.headers.get("webhook-id", "")
        if with_ledger:
            await request.app[ledger_key]("claim", key)
        await (await request.app[producer_key].enqueue(topic, key.encode(), body, []))
        if with_ledger:
            await request.app[ledger_key]("complete", key)
        return web.json_response({"status": "accepted", "type": event.get("type")}, status=202)

    app = web.Application()
    app.cleanup_ctx.append(clients)
    app.add_routes([web.post("/", accept), web.get("/", ready)])
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


# The floor's ledger: the least the API's claim and complete scripts do (one key each).
LEDGER_CLAIM_LUA = "return redis.call('SET', KEYS[1], 'claimed', 'NX', 'PX', 60000)"
LEDGER_COMPLETE_LUA = "return redis.call('SET', KEYS[1], 'done', 'XX', 'PX', 60000)"


async def ready(_request: web.Request) -> web.Response:
    return web.json_response({})


def bench_settings(run: str) -> Settings:
    base = Settings()
    secret = fresh_webhook_secret()
    unlimited = {"orders": {"rate_per_s": 1_000_000, "burst": 1_000_000}}
    return base.model_copy(
        update={
            "topic_prefix": f"benchingest{run}-",
            "api": base.api.model_copy(update={"port": free_port("127.0.0.1")}),
            "webhook": base.webhook.model_copy(update={"secret_orders": secret}),
            "ratelimit": base.ratelimit.model_validate(
                {**base.ratelimit.model_dump(), "sources": unlimited}
            ),
        }
    )


def signed_headers(secret: str) -> Callable[[bytes], dict[str, str]]:
    def headers(body: bytes) -> dict[str, str]:
        webhook_id = f"msg_{uuid.uuid4().hex}"
        timestamp_s = int(time.time())
        return {
            "content-type": "application/json",
            "webhook-id": webhook_id,
            "webhook-timestamp": str(timestamp_s),
            "webhook-signature": sign(secret, webhook_id, timestamp_s, body),
        }

    return headers


def plain_headers(_body: bytes) -> dict[str, str]:
    return {"content-type": "application/json"}


async def load(
    url: str, headers: Callable[[bytes], dict[str, str]], clients: int, duration_s: float
) -> Run:
    """`clients` keep-alive clients POSTing in a loop; only the window after the warm-up counts."""
    run = Run()
    started = time.monotonic()
    counted_from, until = started + WARMUP_S, started + WARMUP_S + duration_s
    body = json.dumps({**BODY, "occurred_at": datetime.now(UTC).isoformat()}).encode()

    async def client(session: aiohttp.ClientSession) -> None:
        while (now := time.monotonic()) < until:
            async with session.post(url, data=body, headers=headers(body)) as response:
                await response.read()
                status = response.status
            if now < counted_from:
                continue
            if 200 <= status < 300:
                run.latencies_s.append(time.monotonic() - now)
            else:
                run.failures[status] = run.failures.get(status, 0) + 1

    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(client(session) for _ in range(clients)))
    run.wall_s = duration_s
    return run


async def wait_answering(url: str, child: Child) -> None:
    deadline = time.monotonic() + READY_DEADLINE_S
    async with aiohttp.ClientSession() as session:
        while True:
            child.check()
            try:
                async with session.get(url) as response:
                    if response.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer within {READY_DEADLINE_S:.0f} s")
            await asyncio.sleep(0.25)


async def bench(args: argparse.Namespace) -> int:
    run_id = uuid.uuid4().hex[:8]
    log_dir = Path(tempfile.mkdtemp(prefix=f"bench-ingest-{run_id}-"))
    settings = bench_settings(run_id)
    await asyncio.to_thread(migrate.upgrade, settings.database)
    catalog = TopicCatalog(settings.topic_prefix, settings.kafka, settings.dispatch.retry_delays_s)
    await ensure_topics(settings.kafka, catalog.all())
    echo_port = free_port("127.0.0.1")
    api = Child("api", "api", settings_env(settings), log_dir)
    echo_script = (__file__, "--echo-port", str(echo_port))
    echo = Child("echo", "", {}, log_dir, script=echo_script)
    api_url = f"http://127.0.0.1:{settings.api.port}"
    secret = settings.webhook.secret_for("orders")
    assert secret is not None
    try:
        await wait_answering(f"{api_url}/health/ready", api)
        await wait_answering(f"http://127.0.0.1:{echo_port}/", echo)
        print(f"{args.clients} keep-alive clients, {args.duration_s:g} s each (logs in {log_dir})")
        echoed = await load(
            f"http://127.0.0.1:{echo_port}/", plain_headers, args.clients, args.duration_s
        )
        print(echoed.line("echo"), flush=True)
        api_cpu_before = api.cpu_s()
        ingested = await load(
            f"{api_url}/v1/webhooks/orders",
            signed_headers(secret.get_secret_value()),
            args.clients,
            args.duration_s,
        )
        api_cpu_after = api.cpu_s()
        print(ingested.line("ingest"), flush=True)
        floors = await run_floors(args, settings, log_dir) if args.floor else {}
    finally:
        api.stop()
        echo.stop()
        delete_topics_blocking(settings.kafka, [settings.topic_prefix])
    ratio = ingested.rate / echoed.rate if echoed.rate else 0.0
    print(f"ratio  {ratio:.2f} (ingest / echo)")
    for name, floor in floors.items():
        floor_ratio = floor.rate / echoed.rate if echoed.rate else 0.0
        print(f"ratio  {floor_ratio:.2f} ({name} / echo: the ceiling with these libraries)")
    if api_cpu_before is not None and api_cpu_after is not None and ingested.latencies_s:
        spent_ms = 1000 * (api_cpu_after - api_cpu_before) / len(ingested.latencies_s)
        print(f"API CPU per accepted webhook {spent_ms:.2f} ms (warm-up included)")
    return 0 if not ingested.failures else 1


async def run_floors(args: argparse.Namespace, settings: Settings, log_dir: Path) -> dict[str, Run]:
    """The floor servers, one after the other, on the run's `orders` topic."""
    topic = TopicCatalog(
        settings.topic_prefix, settings.kafka, settings.dispatch.retry_delays_s
    ).orders_events.name
    floors: dict[str, Run] = {}
    for name, flag in (("floor", "--floor-port"), ("floor+ledger", "--floor-ledger-port")):
        port = free_port("127.0.0.1")
        script = (__file__, flag, str(port), "--floor-topic", topic)
        server = Child(name, "", settings_env(settings), log_dir, script=script)
        try:
            await wait_answering(f"http://127.0.0.1:{port}/", server)
            cpu_before = server.cpu_s()
            floors[name] = await load(
                f"http://127.0.0.1:{port}/", unique_id_headers, args.clients, args.duration_s
            )
            cpu_after = server.cpu_s()
            print(floors[name].line(name), flush=True)
            if cpu_before is not None and cpu_after is not None and floors[name].latencies_s:
                spent_ms = 1000 * (cpu_after - cpu_before) / len(floors[name].latencies_s)
                print(f"{name} CPU per request {spent_ms:.2f} ms (warm-up included)")
        finally:
            server.stop()
    return floors


def unique_id_headers(_body: bytes) -> dict[str, str]:
    return {"content-type": "application/json", "webhook-id": f"msg_{uuid.uuid4().hex}"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--duration-s", type=float, default=20.0)
    parser.add_argument("--floor", action="store_true", help="also run the floor servers")
    parser.add_argument("--echo-port", type=int, help=argparse.SUPPRESS)  # the echo child
    parser.add_argument("--floor-port", type=int, help=argparse.SUPPRESS)  # a floor child
    parser.add_argument("--floor-ledger-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--floor-topic", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.echo_port:
        echo_server(args.echo_port)
        return 0
    if args.floor_port or args.floor_ledger_port:
        port = args.floor_port or args.floor_ledger_port
        floor_server(port, args.floor_topic, with_ledger=bool(args.floor_ledger_port))
        return 0
    return asyncio.run(bench(args))


if __name__ == "__main__":
    raise SystemExit(main())
