"""Session-wide access to the real services, and per-test isolation on top of them.

The services are the ones `stack/stackctl.py` starts (or external ones named by
TRIBUTARY_KAFKA_BOOTSTRAP / TRIBUTARY_DATABASE_URL / TRIBUTARY_REDIS_URL). A missing service
fails the session and says which; nothing here ever skips.
"""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
import uuid
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as redis_asyncio
from pydantic import SecretStr

from streams.kafka.topic_admin import delete_topics_blocking, ensure_topics_blocking
from streams.migrations import runner as migrate
from streams.settings import HTTP_PROVIDER_CREDENTIALS, Settings
from streams.stores.order_store import OrderStore
from tests.integration.api_keys import bearer, create_key
from tests.integration.kafka_io import topic_catalog

REPO = Path(__file__).resolve().parents[2]
INTEGRATION_DIR = Path(__file__).resolve().parent


def pytest_configure(config: pytest.Config) -> None:
    """The tests run in development mode, as `make dev` does: the settings built here and the
    processes they start (which inherit this environment) accept the Makefile's development
    secrets when a shell exported them."""
    os.environ.setdefault("TRIBUTARY_ENV", "dev")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if INTEGRATION_DIR in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.integration)


def _run_in_thread(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine on its own loop, away from the test session's loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _start_stack() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "stack" / "stackctl.py"), "start"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(
            f"the local stack did not start:\n{result.stdout}\n{result.stderr}", pytrace=False
        )


async def _probe_postgres(settings: Settings) -> None:
    store = OrderStore.from_settings(settings.database)
    try:
        await store.ping()
    finally:
        await store.close()


async def _probe_redis(settings: Settings) -> None:
    client = redis_asyncio.from_url(settings.redis.url.get_secret_value())
    try:
        await client.ping()
    finally:
        await client.aclose()


def _probe(settings: Settings) -> None:
    failures: list[str] = []
    probes = {
        "kafka": lambda: ensure_topics_blocking(settings.kafka, []),
        "postgresql": lambda: _run_in_thread(_probe_postgres(settings)),
        "redis": lambda: _run_in_thread(_probe_redis(settings)),
    }
    for service, probe in probes.items():
        try:
            probe()
        except Exception as exc:  # noqa: BLE001 - each failure is reported by service name
            failures.append(f"{service} at its configured address is not usable: {exc!r}")
    if failures:
        pytest.fail(
            "integration tests need the real services:\n" + "\n".join(failures), pytrace=False
        )


@pytest.fixture(scope="session")
def stack_settings() -> Settings:
    _start_stack()
    settings = Settings()
    _probe(settings)
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(migrate.upgrade, settings.database).result()
    return settings


@pytest.fixture(scope="session")
async def api_headers(stack_settings: Settings) -> dict[str, str]:
    """`Authorization` with a key of every scope, for clients of the API's reads: made once,
    in the real PostgreSQL (tests of access itself make keys of their own)."""
    return bearer(await create_key(stack_settings.database))


def _test_secret() -> SecretStr:
    return SecretStr("whsec_" + base64.b64encode(uuid.uuid4().bytes * 2).decode())


def isolated_settings(base: Settings) -> Settings:
    """A copy of `base` on a fresh set of topics and a fresh consumer group."""
    run = uuid.uuid4().hex[:10]
    webhook = base.webhook.model_copy(
        update={
            "secret_orders": _test_secret(),
            "secret_users": _test_secret(),
            "secret_auth": _test_secret(),
            "secret_providers": _test_secret(),
        }
    )
    worker = base.worker.model_copy(update={"app_id": f"tributary-test-{run}"})
    # Credentials have no defaults; the sandbox only checks that there are some.
    providers = base.providers.model_copy(
        update={
            name: SecretStr(f"test-{name}-{uuid.uuid4().hex}") for name in HTTP_PROVIDER_CREDENTIALS
        }
    )
    return base.model_copy(
        update={
            "topic_prefix": f"t{run}-",
            "webhook": webhook,
            "worker": worker,
            "providers": providers,
        }
    )


@pytest.fixture
def settings(stack_settings: Settings) -> Iterator[Settings]:
    isolated = isolated_settings(stack_settings)
    ensure_topics_blocking(isolated.kafka, topic_catalog(isolated).all())
    yield isolated
    # The test's topics (and its Faust app's changelog and repartition topics) are its own.
    delete_topics_blocking(isolated.kafka, [isolated.topic_prefix, isolated.worker.app_id])
