"""Benchmark the provider sandbox: fire N concurrent sends at `python -m sandbox` and print
sends/s and receipts/s (a figure, not a test).

It starts the sandbox as a child process (as `make dev` does) and a tiny aiohttp receiver in this
process as the sandbox's receipt target, which verifies every signature. Sends go round-robin to
SendGrid, Twilio, FCM and Meta (or, with --smtp, as mail over SMTP, one connection per worker).

    .venv/bin/python scripts/bench_sandbox.py --sends 20000 --concurrency 200
    .venv/bin/python scripts/bench_sandbox.py --sends 5000 --smtp
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiohttp
import aiosmtplib
from aiohttp import web

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from api.signature import verify  # noqa: E402 - after the path is set
from streams.errors import InvalidSignatureError  # noqa: E402

HOST = "127.0.0.1"
SECRET = "whsec_" + base64.b64encode(b"bench-sandbox-receipts-secret-32").decode()
BEARER = {"Authorization": "Bearer bench"}
SID = "ACbench000000000000000000000000000"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Receiver:
    receipts: int = 0
    batches: int = 0
    bad_signatures: int = 0
    first_s: float = 0.0
    last_s: float = 0.0
    batch_sizes: list[int] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            verify(SECRET, request.headers, body, now_s=time.time(), tolerance_s=300)
        except InvalidSignatureError:
            self.bad_signatures += 1
            return web.Response(status=401)
        count = body.count(b'"notification_id"')
        now_s = time.monotonic()
        self.first_s = self.first_s or now_s
        self.last_s = now_s
        self.receipts += count
        self.batches += 1
        self.batch_sizes.append(count)
        return web.Response(status=202)


def start_sandbox(
    http_port: int, smtp_port: int, api_url: str, log: Path, profile: str | None
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "TRIBUTARY_SANDBOX_HOST": HOST,
        "TRIBUTARY_SANDBOX_HTTP_PORT": str(http_port),
        "TRIBUTARY_SANDBOX_SMTP_PORT": str(smtp_port),
        "TRIBUTARY_SANDBOX_API_URL": api_url,
        "TRIBUTARY_WEBHOOK_SECRET_PROVIDERS": SECRET,
        "TRIBUTARY_LOG_LEVEL": "WARNING",
    }
    with log.open("wb") as out:
        return subprocess.Popen(
            [
                sys.executable,
                *(["-m", "cProfile", "-o", profile] if profile else []),
                "-m",
                "sandbox",
            ],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=out,
        )


def cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("the sandbox exited while starting")
        try:
            with urllib.request.urlopen(f"{url}/_sandbox/health", timeout=1):  # noqa: S310
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    raise SystemExit("the sandbox did not start within 30 s")


def http_sender(session: aiohttp.ClientSession, base: str) -> Callable[[int], Awaitable[int]]:
    async def send(number: int) -> int:
        nid = f"bench-{number}-{uuid.uuid4().hex[:8]}"
        kind = number % 4
        if kind == 0:
            url = f"{base}/v3/mail/send"
            body: dict[str, Any] = {
                "personalizations": [
                    {
                        "to": [{"email": f"u{number}@example.com"}],
                        "custom_args": {"notification_id": nid},
                    }
                ],
                "from": {"email": "bench@tributary.test"},
                "subject": "Bench",
                "content": [{"type": "text/plain", "value": "Hello"}],
            }
            request = session.post(url, json=body, headers=BEARER)
        elif kind == 1:
            form = {
                # Ends in 5: never one of the 0001/0002/0003 outcome numbers.
                "To": f"+1555{number % 1_000_000:06d}5",
                "From": "+15550000000",
                "Body": "Bench",
                "StatusCallback": f"http://x/cb?notification_id={nid}",
            }
            auth = {"Authorization": aiohttp.encode_basic_auth(SID, "token")}
            request = session.post(
                f"{base}/2010-04-01/Accounts/{SID}/Messages.json", data=form, headers=auth
            )
        elif kind == 2:
            body = {
                "message": {"token": f"device-token-{number}", "data": {"notification_id": nid}}
            }
            request = session.post(
                f"{base}/v1/projects/bench/messages:send", json=body, headers=BEARER
            )
        else:
            body = {
                "messaging_product": "whatsapp",
                "to": "+4915112345678",
                "type": "text",
                "text": {"body": "Bench"},
                "biz_opaque_callback_data": nid,
            }
            request = session.post(f"{base}/v21.0/123/messages", json=body, headers=BEARER)
        async with request as response:
            await response.read()
            return response.status

    return send


async def drive_http(base: str, sends: int, concurrency: int) -> list[float]:
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        send = http_sender(session, base)
        return await drive(send, sends, concurrency)


async def drive(send: Callable[[int], Awaitable[int]], sends: int, workers: int) -> list[float]:
    latencies_s: list[float] = []
    counter = iter(range(sends))
    failures = 0

    async def worker() -> None:
        nonlocal failures
        for number in counter:
            started = time.monotonic()
            status = await send(number)
            latencies_s.append(time.monotonic() - started)
            failures += status >= 300

    await asyncio.gather(*(worker() for _ in range(workers)))
    if failures:
        print(f"  {failures} sends were not accepted")
    return latencies_s


async def drive_smtp(host: str, port: int, sends: int, workers: int) -> list[float]:
    latencies_s: list[float] = []
    counter = iter(range(sends))

    async def worker() -> None:
        client = aiosmtplib.SMTP(hostname=host, port=port)
        await client.connect()
        for number in counter:
            mail = EmailMessage()
            mail["From"] = "bench@tributary.test"
            mail["To"] = f"u{number}@example.com"
            mail["Subject"] = "Bench"
            mail["X-Tributary-Notification-Id"] = f"bench-{number}"
            mail["Message-ID"] = f"<bench-{number}@tributary.test>"
            mail.set_content("Hello")
            started = time.monotonic()
            await client.send_message(mail)
            latencies_s.append(time.monotonic() - started)
        await client.quit()

    await asyncio.gather(*(worker() for _ in range(workers)))
    return latencies_s


async def run(args: argparse.Namespace) -> None:
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/v1/webhooks/providers/{provider}", receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    receiver_port = free_port()
    await web.TCPSite(runner, HOST, receiver_port).start()
    http_port, smtp_port = free_port(), free_port()
    log = Path(args.log)
    log.parent.mkdir(parents=True, exist_ok=True)
    api_url = f"http://{HOST}:{receiver_port}"
    process = start_sandbox(http_port, smtp_port, api_url, log, args.profile)
    base = f"http://{HOST}:{http_port}"
    try:
        await asyncio.to_thread(wait_ready, base, process)
        what = "SMTP mails" if args.smtp else "HTTP sends (sendgrid/twilio/fcm/meta)"
        print(f"{args.sends} {what}, {args.concurrency} concurrent")
        cpu_before_s = cpu_s(process.pid)
        started = time.monotonic()
        if args.smtp:
            latencies_s = await drive_smtp(HOST, smtp_port, args.sends, args.concurrency)
        else:
            latencies_s = await drive_http(base, args.sends, args.concurrency)
        sent_s = time.monotonic() - started
        deadline = time.monotonic() + 60
        while receiver.receipts < args.sends and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        received_s = receiver.last_s - started
        sandbox_cpu_s = cpu_s(process.pid) - cpu_before_s
        latencies_s.sort()
        print(f"  sends:    {args.sends / sent_s:8.0f} /s  ({sent_s:.2f} s)")
        print(
            f"  latency:  p50 {statistics.median(latencies_s) * 1000:.1f} ms, "
            f"p95 {latencies_s[int(len(latencies_s) * 0.95)] * 1000:.1f} ms"
        )
        sizes = receiver.batch_sizes or [0]
        print(
            f"  receipts: {receiver.receipts / max(received_s, 1e-9):8.0f} /s  "
            f"({receiver.receipts} in {receiver.batches} signed batches, "
            f"mean {statistics.mean(sizes):.0f}, max {max(sizes)}; the last "
            f"{received_s:.2f} s after the first send; bad signatures {receiver.bad_signatures})"
        )
        print(
            f"  sandbox CPU: {sandbox_cpu_s:.2f} s, "
            f"{sandbox_cpu_s / args.sends * 1e6:.0f} µs a send "
            f"(one core would take {args.sends / max(sandbox_cpu_s, 1e-9):.0f} sends/s)"
        )
        if receiver.receipts < args.sends:
            print(f"  MISSING receipts: {args.sends - receiver.receipts}")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sends", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--smtp", action="store_true", help="send mail over SMTP instead")
    parser.add_argument("--profile", help="run the sandbox under cProfile, writing stats here")
    parser.add_argument(
        "--log", default=str(REPO / ".stack" / "bench_sandbox.log"), help="the sandbox's output"
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
