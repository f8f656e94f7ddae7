"""Benchmark notification dispatch: the dispatcher's batches through the real channel adapters
to the provider sandbox, and print sends/s (a figure, not a test).

Measures what `dispatch_notifications` does per batch — decode, `sending` statuses, concurrent
sends bounded per channel, outcome statuses (Avro-encoded) — minus the Kafka round trips, which
the whole-loop benchmark (`scripts/bench_notifications.py`) includes. The sandbox runs as a child
process on the same machine, so its CPU counts against the figure.

    .venv/bin/python scripts/bench_dispatch.py --notifications 20000 --batch 500
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web
from pydantic import SecretStr

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agents.dispatch.dispatcher import (  # noqa: E402 - after the path is set
    DispatchRecord,
    NotificationDispatcher,
)
from agents.retry import Backoff  # noqa: E402
from schemas.notifications import NotificationDispatchEvent  # noqa: E402
from streams.kafka.wire import decode, encode  # noqa: E402
from streams.providers.channels import build_channel_senders, provider_senders  # noqa: E402
from streams.providers.http import create_client_session  # noqa: E402
from streams.runtime import OutgoingRecord, SourceRecord, free_port  # noqa: E402
from streams.settings import DispatchSettings, ProviderSettings  # noqa: E402

HOST = "127.0.0.1"
RECIPIENTS = {
    "email": "ada@example.com",
    "sms": "+15551230000",
    "push": "device-token-1",
    "whatsapp": "+15550001234",
}


class CountingSink:
    def __init__(self) -> None:
        self.records = 0

    async def send_all(self, records: Sequence[OutgoingRecord]) -> None:
        self.records += len(records)


def dispatch_records(count: int) -> list[DispatchRecord]:
    now = datetime.now(UTC)
    channels = list(RECIPIENTS)
    records = []
    for n in range(count):
        channel = channels[n % len(channels)]
        notification_id = f"bench-{uuid.uuid4().hex}"
        event = NotificationDispatchEvent.model_validate(
            {
                "event_id": uuid.uuid4(),
                "event_type": "notification.dispatch-requested",
                "occurred_at": now,
                "ingested_at": now,
                "source": "bench",
                "correlation_id": notification_id,
                "payload": {
                    "notification_id": notification_id,
                    "user_id": f"user-{n}",
                    "category": "account",
                    "channel": channel,
                    "recipient": RECIPIENTS[channel],
                    "locale": "en",
                    "subject": "Welcome",
                    "body": "Hello from the dispatch benchmark",
                    "template": "welcome",
                    "rule": "welcome",
                    "attempt": 1,
                    "caused_at": now,
                    "critical": False,
                },
            }
        )
        source = SourceRecord(
            "notifications.dispatch", 0, n, notification_id.encode(), encode(event)
        )
        records.append(DispatchRecord(source, (), int(time.time() * 1000)))
    return records


async def receipts_sink(port: int) -> web.AppRunner:
    """Where the sandbox posts its receipts: accepted unread, they are not what is measured."""

    async def accept(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=202)

    app = web.Application()
    app.router.add_post("/v1/webhooks/providers/{provider}", accept)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, HOST, port).start()
    return runner


def start_sandbox(http_port: int, smtp_port: int, api_port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "TRIBUTARY_SANDBOX_HTTP_PORT": str(http_port),
        "TRIBUTARY_SANDBOX_SMTP_PORT": str(smtp_port),
        "TRIBUTARY_SANDBOX_API_URL": f"http://{HOST}:{api_port}",
        "TRIBUTARY_WEBHOOK_SECRET_PROVIDERS": "whsec_YmVuY2gtZGlzcGF0Y2gtcmVjZWlwdHMtc2VjcmV0IQ==",
        "TRIBUTARY_LOG_LEVEL": "WARNING",
    }
    sandbox = subprocess.Popen([sys.executable, "-m", "sandbox"], cwd=REPO, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            url = f"http://{HOST}:{http_port}/_sandbox/health"
            with urllib.request.urlopen(url, timeout=1):
                return sandbox
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    sandbox.kill()
    raise SystemExit("the sandbox did not start within 30 s")


async def bench(count: int, batch: int, concurrency: int) -> None:
    http_port, smtp_port, api_port = free_port(HOST), free_port(HOST), free_port(HOST)
    runner = await receipts_sink(api_port)
    sandbox = start_sandbox(http_port, smtp_port, api_port)
    url = f"http://{HOST}:{http_port}"
    providers = ProviderSettings(
        sendgrid_base_url=url,
        twilio_base_url=url,
        fcm_base_url=url,
        meta_base_url=url,
        smtp_port=smtp_port,
        # The sandbox only checks that credentials are there; these are the bench's own.
        sendgrid_api_key=SecretStr("bench-sendgrid-key"),
        twilio_auth_token=SecretStr("bench-twilio-token"),
        fcm_access_token=SecretStr("bench-fcm-token"),
        meta_access_token=SecretStr("bench-meta-token"),
    )
    settings = DispatchSettings(concurrency_per_channel=concurrency)
    session = create_client_session(settings.connection_pool_size, settings.timeout_s)
    try:
        channels = build_channel_senders(
            provider_senders(session, providers, settings.timeout_s), providers, settings
        )
        status = CountingSink()
        dispatcher = NotificationDispatcher(
            sender=channels,
            decode=lambda raw: decode(raw, NotificationDispatchEvent),
            encode=encode,
            status=status,
            retries=[CountingSink() for _ in settings.retry_delays_s],
            dead_letters=CountingSink(),
            delays_s=settings.retry_delays_s,
            backoff=Backoff(),
        )
        records = dispatch_records(count)
        await dispatcher.process(records[:batch])  # warm-up: connections, caches
        measured = records[batch:]
        started = time.perf_counter()
        cpu_started_s = time.process_time()
        for start in range(0, len(measured), batch):
            await dispatcher.process(measured[start : start + batch])
        elapsed_s = time.perf_counter() - started
        cpu_s = time.process_time() - cpu_started_s
        stats = dispatcher.stats
        print(
            f"{len(measured)} notifications in {elapsed_s:.2f} s: "
            f"{len(measured) / elapsed_s:,.0f} sends/s "
            f"(batch {batch}, {concurrency} in flight per channel; "
            f"sent {stats.sent}, retried {stats.retries}, dead letters {stats.dead_letters}, "
            f"{status.records} status events)"
        )
        # The machine may be shared: CPU time says what one core of dispatch alone can do.
        print(
            f"dispatcher CPU {cpu_s:.2f} s: {len(measured) / cpu_s:,.0f} sends per CPU-second "
            f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
        )
    finally:
        await session.close()
        sandbox.send_signal(signal.SIGTERM)
        sandbox.wait(timeout=10)
        await runner.cleanup()
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        print(f"sandbox CPU {children.ru_utime + children.ru_stime:.2f} s (whole run)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notifications", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=500)
    in_flight = DispatchSettings().concurrency_per_channel
    parser.add_argument("--concurrency", type=int, default=in_flight)
    args = parser.parse_args()
    asyncio.run(bench(args.notifications, args.batch, args.concurrency))


if __name__ == "__main__":
    main()
