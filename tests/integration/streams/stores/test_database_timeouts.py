"""PostgreSQL that is slow or saturated is a `ServiceUnavailableError` (the API's 503 with
Retry-After), bounded by the statement timeout and the pool's acquire timeout."""

from __future__ import annotations

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
