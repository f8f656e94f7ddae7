"""PostgreSQL that is slow or saturated is a `ServiceUnavailableError` (the API's 503 with
Retry-After), bounded by the statement timeout and the pool's acquire timeout; a transaction
PostgreSQL rolled back to break a deadlock is one too (a retry succeeds)."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest
import sqlalchemy as sa
from pytest_aiohttp import AiohttpClient

from api.app import create_app
from streams.errors import ServiceUnavailableError
from streams.settings import Settings
from streams.stores.database import create_engine, translate_database_errors


async def test_a_statement_over_the_timeout_is_service_unavailable(settings: Settings) -> None:
    engine = create_engine(settings.database.model_copy(update={"statement_timeout_s": 0.05}))
    try:
        with pytest.raises(ServiceUnavailableError, match="statement timeout"):
            async with translate_database_errors(), engine.connect() as conn:
                await conn.execute(sa.text("SELECT pg_sleep(5)"))
    finally:
        await engine.dispose()


async def test_a_transaction_rolled_back_to_break_a_deadlock_is_retriable(
    settings: Settings,
) -> None:
    """Two transactions each holding the lock the other waits for: PostgreSQL aborts one
    (SQLSTATE 40P01, class 40: "transaction rollback", which a retry can cure); the tracker
    retries what is retriable and would stop on anything else."""
    engine = create_engine(settings.database)
    first, second = random.sample(range(1, 2**31), 2)
    holding = [asyncio.Event(), asyncio.Event()]

    async def lock_both(mine: int, theirs: int, me: int) -> None:
        async with translate_database_errors(), engine.begin() as conn:
            await conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": mine})
            holding[me].set()
            await holding[1 - me].wait()
            await conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": theirs})

    try:
        results = await asyncio.gather(
            lock_both(first, second, 0), lock_both(second, first, 1), return_exceptions=True
        )
    finally:
        await engine.dispose()
    errors = [result for result in results if isinstance(result, BaseException)]
    assert len(errors) == 1, results
    assert isinstance(errors[0], ServiceUnavailableError)
    assert "deadlock" in str(errors[0])


async def test_waiting_for_a_connection_is_bounded(settings: Settings) -> None:
    database = settings.database.model_copy(
        update={"pool_size": 1, "max_overflow": 0, "pool_timeout_s": 0.1}
    )
    engine = create_engine(database)
    try:
        async with engine.connect():
            with pytest.raises(ServiceUnavailableError, match="no free connection"):
                async with translate_database_errors(), engine.connect():
                    pass
    finally:
        await engine.dispose()


async def test_the_api_answers_503_with_retry_after_when_a_read_times_out(
    aiohttp_client: AiohttpClient, settings: Settings, api_headers: dict[str, str]
) -> None:
    database = settings.database.model_copy(update={"statement_timeout_s": 0.2})
    app = create_app(settings.model_copy(update={"database": database}))
    client: Any = await aiohttp_client(app, headers=api_headers)
    locker = create_engine(settings.database)
    try:
        async with locker.begin() as conn:
            # Held until the end of this block: the API's read waits for it, then times out.
            await conn.execute(
                sa.text("LOCK TABLE notification_deliveries IN ACCESS EXCLUSIVE MODE")
            )
            response = await client.get("/v1/notifications/n-locked")
        assert response.status == 503
        assert response.content_type == "application/problem+json"
        assert (await response.json())["service"] == "postgresql"
        assert int(response.headers["Retry-After"]) >= 1
    finally:
        await locker.dispose()
