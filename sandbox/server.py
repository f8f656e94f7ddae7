"""Running the sandbox: HTTP providers, the SMTP listener and one receipt poster per provider,
started and stopped together. `python -m sandbox` and the benchmark both use `serve_sandbox`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from pydantic import SecretStr

from sandbox.http_providers import create_http_app
from sandbox.receipts import HttpPoster, ReceiptBatcher
from sandbox.service import PROVIDER_CHANNELS, Sandbox
from sandbox.smtp_server import start_smtp
from streams.settings import SandboxSettings

log = logging.getLogger(__name__)

READY_MESSAGE = "Tributary provider sandbox ready"
# Receipts go to one API; a few connections per provider poster is plenty.
RECEIPT_CONNECTIONS = 20


@dataclass(frozen=True)
class ServingSandbox:
    sandbox: Sandbox
    http_url: str
    smtp_host: str
    smtp_port: int


@contextlib.asynccontextmanager
async def serve_sandbox(
    config: SandboxSettings, secret: SecretStr | None
) -> AsyncIterator[ServingSandbox]:
    """`secret` signs the receipts (`WebhookSettings.secret_providers`); None: none are posted."""
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=RECEIPT_CONNECTIONS))
    batchers: dict[str, ReceiptBatcher] = {}
    if secret is None:
        log.warning("TRIBUTARY_WEBHOOK_SECRET_PROVIDERS is not set: no receipts will be posted")
    else:
        poster = HttpPoster(session, config.api_url, secret.get_secret_value())
        batchers = {
            provider: ReceiptBatcher(
                provider, poster, delay_s=config.receipt_delay_s, batch_max=config.receipt_batch_max
            )
            for provider in PROVIDER_CHANNELS
        }
    sandbox = Sandbox(config, batchers)
    posters = [asyncio.create_task(batcher.run()) for batcher in batchers.values()]
    runner = web.AppRunner(create_http_app(sandbox), access_log=None, handle_signals=False)
    smtp: asyncio.Server | None = None
    try:
        await runner.setup()
        site = web.TCPSite(runner, config.host, config.http_port)
        await site.start()
        http_host, http_port = runner.addresses[0][:2]
        smtp = await start_smtp(sandbox, config.host, config.smtp_port)
        smtp_host, smtp_port = smtp.sockets[0].getsockname()[:2]
        yield ServingSandbox(sandbox, f"http://{http_host}:{http_port}", smtp_host, smtp_port)
    finally:
        if smtp is not None:
            smtp.close()
        for task in posters:
            task.cancel()
        await asyncio.gather(*posters, return_exceptions=True)
        await runner.cleanup()
        await session.close()
