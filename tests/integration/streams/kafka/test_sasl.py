"""Every Kafka client through a SASL/SCRAM listener (the local stack's second listener): the
API's producer acknowledges a webhook, the worker (Faust's consumer and producer, the admin that
creates its topics) materializes it, and wrong credentials are refused."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import (
    AdminClient,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)
from pydantic import SecretStr
from pytest_aiohttp import AiohttpClient

from api.app import create_app
from streams.errors import ServiceUnavailableError
from streams.kafka.topic_admin import delete_topics_blocking, ensure_topics_blocking
from streams.settings import KafkaSettings, Settings
from streams.stores.order_store import OrderStore
from tests.integration.api.support import order_webhook, post_order
from tests.integration.worker_process import eventually, make_worker_settings, running_worker

SASL_PORT = int(os.environ.get("TRIBUTARY_STACK_KAFKA_SASL_PORT", "9094"))


def scram_user(kafka: KafkaSettings) -> tuple[str, SecretStr]:
    """A SCRAM-SHA-256 user of its own, created through the plain listener's admin API."""
    name, password = f"tributary-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    admin = AdminClient({"bootstrap.servers": kafka.bootstrap})
    upsert = UserScramCredentialUpsertion(
        name, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096), password.encode()
    )
    for future in admin.alter_user_scram_credentials([upsert]).values():
        future.result(timeout=30)
    return name, SecretStr(password)


def over_sasl(settings: Settings, user: str, password: SecretStr) -> Settings:
    kafka = settings.kafka.model_copy(
        update={
            "bootstrap": f"127.0.0.1:{SASL_PORT}",
            "security_protocol": "SASL_PLAINTEXT",
            "sasl_mechanism": "SCRAM-SHA-256",
            "sasl_username": user,
            "sasl_password": password,
            "request_timeout_s": 5.0,
        }
    )
    return settings.model_copy(update={"kafka": kafka})


@pytest.fixture
def sasl_settings(stack_settings: Settings, tmp_path: Path) -> Iterator[Settings]:
    """A fresh user, topics and group; the user and the topics go afterwards."""
    base = make_worker_settings(stack_settings, tmp_path)
    user, password = scram_user(base.kafka)
    yield over_sasl(base, user, password)
    admin = AdminClient({"bootstrap.servers": base.kafka.bootstrap})
    gone = UserScramCredentialDeletion(user, ScramMechanism.SCRAM_SHA_256)
    for future in admin.alter_user_scram_credentials([gone]).values():
        future.result(timeout=30)
    delete_topics_blocking(base.kafka, [base.topic_prefix, base.worker.app_id])


async def test_the_api_and_a_worker_work_through_a_sasl_scram_listener(
    sasl_settings: Settings,
    tmp_path: Path,
    aiohttp_client: AiohttpClient,
    api_headers: dict[str, str],
) -> None:
    # The worker creates its topics (admin) and consumes and produces (Faust) over SASL.
    with running_worker(sasl_settings, tmp_path / "worker.log") as worker:
        client = await aiohttp_client(create_app(sasl_settings), headers=api_headers)
        body = order_webhook()
        response = await post_order(client, sasl_settings, body)
        assert response.status == 202, await response.text()
        store = OrderStore.from_settings(sasl_settings.database)
        try:

            async def materialized() -> Any:
                return await store.get(body["order"]["id"])

            view = await eventually(materialized, what="the order's view", worker=worker)
        finally:
            await store.close()
    assert view.status == "pending"


async def test_wrong_credentials_are_refused(sasl_settings: Settings) -> None:
    wrong = over_sasl(sasl_settings, str(sasl_settings.kafka.sasl_username), SecretStr("wrong"))
    with pytest.raises(ServiceUnavailableError):
        await asyncio.to_thread(ensure_topics_blocking, wrong.kafka, [])


def test_sasl_without_credentials_is_a_settings_error() -> None:
    with pytest.raises(ValueError, match="sasl_username and sasl_password"):
        KafkaSettings(security_protocol="SASL_PLAINTEXT")
