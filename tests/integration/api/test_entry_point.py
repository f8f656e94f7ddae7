"""`python -m api` serves on the configured address and shuts down cleanly on a signal."""

from __future__ import annotations

import asyncio
import re
import signal
import sys

import aiohttp
import pytest

from streams.settings import Settings

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 30.0


async def test_the_api_process_prints_its_url_serves_and_stops_on_sigterm(
    settings: Settings,
) -> None:
    secret = settings.webhook.secret_for("orders")
    assert secret is not None
    env = {
        "TRIBUTARY_API_PORT": "0",
        "TRIBUTARY_TOPIC_PREFIX": settings.topic_prefix,
        "TRIBUTARY_KAFKA_BOOTSTRAP": settings.kafka.bootstrap,
        "TRIBUTARY_REDIS_URL": settings.redis.url.get_secret_value(),
        "TRIBUTARY_DATABASE_URL": settings.database.url.get_secret_value(),
        "TRIBUTARY_WEBHOOK_SECRET_ORDERS": secret.get_secret_value(),
        "PATH": "/usr/bin:/bin",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "api",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert process.stdout is not None
    try:
        async with asyncio.timeout(START_TIMEOUT_S):
            line = (await process.stdout.readline()).decode()
        found = re.search(r"http://\S+", line)
        assert found, f"no URL in {line!r}"
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{found.group(0)}/health/ready") as response,
        ):
            assert response.status == 200
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(STOP_TIMEOUT_S):
            remaining = (await process.stdout.read()).decode()
            assert await process.wait() == 0
        assert "shutting down" in remaining
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


@pytest.mark.parametrize("module", ["api", "agents"])
@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TRIBUTARY_OPERATOR_TOKEN", "dev-operator-token"),
        ("TRIBUTARY_PROVIDERS_TWILIO_AUTH_TOKEN", "dev-twilio-token"),
    ],
)
async def test_api_and_worker_refuse_to_start_with_a_development_secret_outside_dev_mode(
    settings: Settings, module: str, variable: str, value: str
) -> None:
    env = {
        "TRIBUTARY_API_PORT": "0",
        "TRIBUTARY_TOPIC_PREFIX": settings.topic_prefix,
        "TRIBUTARY_KAFKA_BOOTSTRAP": settings.kafka.bootstrap,
        "TRIBUTARY_REDIS_URL": settings.redis.url.get_secret_value(),
        "TRIBUTARY_DATABASE_URL": settings.database.url.get_secret_value(),
        variable: value,
        "PATH": "/usr/bin:/bin",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(START_TIMEOUT_S):
            stdout, stderr = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode != 0
    assert b"listening" not in stdout
    assert b"holds a published development value" in stderr
