"""Wiring of the security signals into a Faust app: two agents, two tables, one internal topic.

`detect_suspicious_logins` reads `auth.events` (keyed by user id) into the `security-users`
table: failed-login windows per user. It also copies every failed login, as
is, onto `<app id>-auth-failures-by-ip`, keyed by IP: per-IP state needs its events partitioned
by IP, and a table must be co-partitioned with the stream that feeds it. `detect_suspicious_ips`
reads that topic into the `security-ips` table. The re-key topic is internal to the app (named
like Faust's own repartition topics, under the app id) and created with the others before the
worker subscribes (see `internal_topics`), rather than by Faust's `group_by` mid-start.

Both publish `auth.suspicious-login` onto `auth.events` keyed by user id, and write blocks to
Redis. The rules are in `security_signals`, the batch in `security_batch`. `then`, when given,
runs on every batch of `detect_suspicious_logins` after the rules, on the records the rules
decoded (the sessions fold, which holds the new-device rule: see `agents.sessions`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import faust
from faust.types import AgentT, EventT, TableT
from mode import Service

from agents.security.batch import (
    BlockSink,
    DecodedProcess,
    SecurityProcessor,
    ip_key,
    then_decoded,
    user_key,
)
from agents.security.signals import on_ip_failure, on_user_event
from schemas.auth import AuthEvent
from streams.kafka.catalog import TopicCatalog, TopicSpec
from streams.kafka.wire import WireCodec
from streams.runtime import (
    BatchProcess,
    TopicPublisher,
    batch_agent,
    batch_size,
    describe_event,
    event_scope,
    raw_topic,
)
from streams.settings import SecuritySettings, WorkerSettings
from streams.stores.block_store import BlockStore

USERS_AGENT = "detect_suspicious_logins"
IPS_AGENT = "detect_suspicious_ips"
USERS_TABLE = "security-users"
IPS_TABLE = "security-ips"
# Failures are only needed for as long as a window lasts; a day covers any sane window.
BY_IP_RETENTION_MS = 24 * 3600 * 1000


def by_ip_topic(catalog: TopicCatalog, app_id: str) -> TopicSpec:
    """Laid out as the catalog's topics, but named under the app id (`WorkerSettings.app_id`)."""
    return TopicSpec(
        name=f"{app_id}-auth-failures-by-ip",
        key="ip address",
        partitions=catalog.partitions,
        replication_factor=catalog.replication_factor,
        retention_ms=BY_IP_RETENTION_MS,
        value_subject="auth.events-value",
    )


def internal_topics(catalog: TopicCatalog, app_id: str) -> list[TopicSpec]:
    """Topics the security agents need besides the catalog's and the tables' changelogs."""
    return [by_ip_topic(catalog, app_id)]


@dataclass(frozen=True, slots=True)
class SecurityPipeline:
    users: SecurityProcessor[EventT[bytes]]
    ips: SecurityProcessor[EventT[bytes]]
    agents: tuple[AgentT[Any], AgentT[Any]]


def _table(app: faust.App, name: str, partitions: int, help_: str) -> TableT[bytes, Any]:
    table: TableT[bytes, Any] = app.Table(name, partitions=partitions, key_type=bytes, help=help_)
    return table


def register_users_table(app: faust.App, catalog: TopicCatalog) -> TableT[bytes, Any]:
    """The `security-users` table, made before `register_security` when another fold of the same
    agent reads it too (the sessions fold, for the devices the old new-device rule kept)."""
    return _table(app, USERS_TABLE, catalog.partitions, "Failed-login window, by user id.")


def register_security(
    app: faust.App,
    catalog: TopicCatalog,
    worker: WorkerSettings,
    security: SecuritySettings,
    blocks: BlockSink,
    codec: WireCodec,
    *,
    then: DecodedProcess[EventT[bytes]] | None = None,
    users_table: TableT[bytes, Any] | None = None,
) -> SecurityPipeline:
    source = catalog.for_topic("auth.events")
    auth_topic = raw_topic(app, source.name)
    by_ip = raw_topic(app, by_ip_topic(catalog, worker.app_id).name)
    dead_letters = TopicPublisher(raw_topic(app, catalog.dead_letters(source).name))
    alerts = TopicPublisher(auth_topic)
    partitions = catalog.partitions
    users_table = users_table if users_table is not None else register_users_table(app, catalog)
    ips_table = _table(app, IPS_TABLE, partitions, "Failed-login window, by IP address.")

    def decode(raw: bytes | None) -> AuthEvent:
        return codec.decode(raw, AuthEvent)

    common: dict[str, Any] = {
        "config": security,
        "decode": decode,
        "encode": codec.encode,
        "alerts": alerts,
        "blocks": blocks,
        "dead_letters": dead_letters,
        "describe": describe_event,
        "scope": event_scope,
    }
    users: SecurityProcessor[EventT[bytes]] = SecurityProcessor(
        table=users_table,
        key_of=user_key,
        handle=on_user_event,
        forward=TopicPublisher(by_ip),
        **common,
    )
    # Dead letters of the re-keyed topic go to auth.events.dlq too: its bytes came from there.
    ips: SecurityProcessor[EventT[bytes]] = SecurityProcessor(
        table=ips_table, key_of=ip_key, handle=on_ip_failure, **common
    )
    size = batch_size(worker)
    process_users: BatchProcess = users.process if then is None else then_decoded(users, then)
    agents = (
        batch_agent(app, auth_topic, USERS_AGENT, process_users, size),
        batch_agent(app, by_ip, IPS_AGENT, ips.process, size),
    )
    return SecurityPipeline(users, ips, agents)


class BlockStoreService(Service):
    """Owns the worker's Redis client for blocks; stops after the agents that write them."""

    def __init__(self, blocks: BlockStore) -> None:
        super().__init__()
        self.blocks = blocks

    async def on_stop(self) -> None:
        await self.blocks.close()
