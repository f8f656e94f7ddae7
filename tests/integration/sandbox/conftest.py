"""One sandbox process per module, posting its receipts to a small aiohttp receiver in the test
process that verifies every signature the way the API does (`api.signature.verify`) and reads
each provider's own format the way the API does (`streams.providers.webhooks`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import ClientSession, web

from api.signature import verify
from streams.errors import InvalidSignatureError
from streams.providers.receipts import ReceiptRequest
from streams.providers.webhooks import FORMATS
from streams.runtime import free_port
from streams.settings import Settings
from tests.integration.sandbox_process import (
    SandboxProcess,
    make_sandbox_settings,
    running_sandbox,
)

WAIT_DEADLINE_S = 20.0


@dataclass(frozen=True)
class ReceiptPost:
    provider: str
    webhook_id: str
    body: bytes
    receipts: list[dict[str, Any]]
    signature_error: str | None


@dataclass
class ReceiptReceiver:
    """Plays the ingest API's receipt endpoint: verifies, records, answers 202 (or 503 while
    `refuse[provider]` counts down, to make the sandbox retry)."""

    secret: str
    url: str = ""
    posts: list[ReceiptPost] = field(default_factory=list)
    refused: list[ReceiptPost] = field(default_factory=list)
    refuse: dict[str, int] = field(default_factory=dict)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            verify(self.secret, request.headers, body, now_s=time.time(), tolerance_s=300)
            error = None
        except InvalidSignatureError as exc:
            error = str(exc)
        provider = request.match_info["provider"]
        items = FORMATS[provider].parse(ReceiptRequest(body, request.query, datetime.now(UTC)))
        post = ReceiptPost(
            provider,
            request.headers.get("webhook-id", ""),
            body,
            [item.model_dump(mode="json", exclude_none=True) for item in items],
            error,
        )
        if self.refuse.get(post.provider, 0) > 0:
            self.refuse[post.provider] -= 1
            self.refused.append(post)
            return web.json_response({"title": "busy"}, status=503)
        self.posts.append(post)
        return web.json_response({"status": "accepted"}, status=202)

    def receipts_for(self, notification_id: str) -> list[dict[str, Any]]:
        return [
            receipt
            for post in self.posts
            for receipt in post.receipts
            if receipt["notification_id"] == notification_id
        ]

    def posts_with(self, notification_id: str) -> list[ReceiptPost]:
        return [
            post
            for post in self.posts
            if any(r["notification_id"] == notification_id for r in post.receipts)
        ]

    async def wait_until(self, condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + WAIT_DEADLINE_S
        while not condition():
            if time.monotonic() > deadline:
                pytest.fail(f"{what}: not within {WAIT_DEADLINE_S} s; posts: {self.posts[-5:]}")
            await asyncio.sleep(0.02)

    async def receipts(self, notification_id: str, count: int = 1) -> list[dict[str, Any]]:
        await self.wait_until(
            lambda: len(self.receipts_for(notification_id)) >= count,
            f"{count} receipt(s) for {notification_id}",
        )
        return self.receipts_for(notification_id)


@pytest.fixture(scope="module")
def sandbox_settings() -> Settings:
    # The receiver's port is chosen before it starts, so the sandbox can be told where it is.
    base = Settings()
    port = free_port(base.sandbox.host)
    return make_sandbox_settings(base, f"http://{base.sandbox.host}:{port}")


@pytest_asyncio.fixture(scope="module")
async def receiver(sandbox_settings: Settings) -> AsyncIterator[ReceiptReceiver]:
    secret = sandbox_settings.webhook.secret_providers
    assert secret is not None
    receiver = ReceiptReceiver(secret.get_secret_value(), url=sandbox_settings.sandbox.api_url)
    app = web.Application()
    app.router.add_post("/v1/webhooks/providers/{provider}", receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    host, _, port = receiver.url.removeprefix("http://").partition(":")
    await web.TCPSite(runner, host, int(port)).start()
    yield receiver
    await runner.cleanup()


@pytest.fixture(scope="module")
def sandbox(
    sandbox_settings: Settings,
    receiver: ReceiptReceiver,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[SandboxProcess]:
    log_path = tmp_path_factory.mktemp("sandbox") / "sandbox.log"
    with running_sandbox(sandbox_settings, log_path) as process:
        yield process


@pytest_asyncio.fixture(scope="module")
async def http() -> AsyncIterator[ClientSession]:
    async with ClientSession() as session:
        yield session
