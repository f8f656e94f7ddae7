"""At start the API warns about topics that differ from the catalog, and changes nothing."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]
from pytest_aiohttp import AiohttpClient

from api.app import create_app
from api.topic_check import TOPIC_CHECK
from streams.kafka.topic_admin import delete_topics_blocking, ensure_topics_blocking
from streams.settings import Settings
from tests.integration.kafka_io import topic_catalog


async def test_the_api_warns_at_start_about_a_topic_that_differs(
    aiohttp_client: AiohttpClient, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    fresh = settings.model_copy(update={"topic_prefix": f"chk{uuid.uuid4().hex[:8]}-"})
    catalog = topic_catalog(fresh)
    users = catalog.for_topic("users.events")
    admin = AdminClient({"bootstrap.servers": fresh.kafka.bootstrap})
    weaker = users.configs | {"unclean.leader.election.enable": "true"}
    odd = NewTopic(users.name, num_partitions=users.partitions, replication_factor=1, config=weaker)
    admin.create_topics([odd])[users.name].result(timeout=10)
    try:
        ensure_topics_blocking(fresh.kafka, catalog.families())
        caplog.clear()
        app = create_app(fresh)
        await aiohttp_client(app)
        task = app[TOPIC_CHECK].task
        assert task is not None
        expected = f"{users.name}: has unclean.leader.election.enable=true, catalog says false"
        assert await task == [expected]
        assert any(expected in r.getMessage() for r in caplog.records)
    finally:
        delete_topics_blocking(fresh.kafka, [fresh.topic_prefix])
