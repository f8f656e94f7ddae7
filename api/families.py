"""Webhook families: the glue between `schemas.contracts` and the ingest endpoint.

The contracts already say, per family, what a webhook body looks like, which object becomes the
payload and which field is the record key. This module only adds what ingestion decides: the
event id (from the webhook id), the `source`, the URL path and the deployment's prefixed topic.
So a family that gains a webhook in the contracts gains its endpoint with no new code here; it
only needs a signing secret (`WebhookSettings.secret_for`) and a topic in `streams.kafka.catalog`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel

from schemas.contracts import CONTRACTS, Contract, WebhookBody, WebhookContract, event_from_webhook
from streams.kafka.catalog import TopicCatalog, TopicSpec
from streams.name_ids import URL_IDS


def event_id_for(family: str, webhook_id: str) -> UUID:
    """The webhook id if it is a UUID, else a UUID derived from it.

    Deterministic, so that every copy of a webhook (including one produced twice because a
    timed-out send reached Kafka after all) carries the same event id for consumers to dedupe on.
    """
    try:
        return UUID(webhook_id)
    except ValueError:
        return URL_IDS.uuid(f"tributary:{family}:{webhook_id}")


@dataclass(frozen=True, slots=True)
class WebhookFamily:
    """A contract that arrives by webhook, seen from the ingest endpoint."""

    contract: Contract[Any]
    webhook: WebhookContract[Any]

    @classmethod
    def of(cls, contract: Contract[Any]) -> WebhookFamily:
        if contract.webhook is None:
            raise ValueError(f"{contract.family} events do not arrive by webhook")
        return cls(contract, contract.webhook)

    @property
    def name(self) -> str:
        """The family name: the URL path segment, the secret's name, the ledger's namespace."""
        return self.contract.family

    @property
    def body_model(self) -> type[BaseModel]:
        return self.webhook.body_model

    @property
    def source(self) -> str:
        return f"webhook:{self.name}"

    @property
    def path(self) -> str:
        return f"/v1/webhooks/{self.name}"

    def topic(self, catalog: TopicCatalog) -> TopicSpec:
        return catalog.for_topic(self.contract.topic)

    def key(self, body: BaseModel) -> bytes:
        return self.webhook.key(body).encode()

    def event(self, body: WebhookBody, event_id: UUID, ingested_at: datetime) -> BaseModel:
        """The envelope for a validated body (event id from `event_id_for`): the topic's value."""
        event: BaseModel = event_from_webhook(
            self.contract, body, event_id=event_id, ingested_at=ingested_at, source=self.source
        )
        return event


FAMILIES: tuple[WebhookFamily, ...] = tuple(
    WebhookFamily.of(contract) for contract in CONTRACTS if contract.webhook is not None
)
BY_NAME: Mapping[str, WebhookFamily] = {family.name: family for family in FAMILIES}
