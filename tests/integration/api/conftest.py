"""An API client on the test's own settings (own topics, own ledger keys, own secrets)."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from api.app import create_app
from streams.settings import Settings


@pytest.fixture
async def client(
    aiohttp_client: AiohttpClient, settings: Settings, api_headers: dict[str, str]
) -> TestClient[Any, Any]:
    """Sends a key of every scope unless a request gives its own `Authorization`."""
    return await aiohttp_client(create_app(settings), headers=api_headers)
