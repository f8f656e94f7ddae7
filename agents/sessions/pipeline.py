"""Wiring of the sessions fold into a Faust app: the `sessions` table and its tracker.

The tracker has no agent of its own: it runs in `detect_suspicious_logins`, after the security
rules, on the same batches of `auth.events`, decoded once for both (pass
`tracker.process_decoded` to `register_security` as `then`). The table is keyed by user id
(UTF-8 bytes, like the topic's keys), co-partitioned.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import faust
from faust.types import EventT, TableT

from agents.retry import Backoff
from agents.sessions.tracker import SessionSink, SessionsTable, SessionTracker
from schemas.auth import AuthEvent
from streams.kafka.catalog import TopicCatalog
from streams.kafka.wire import WireCodec
from streams.runtime import TopicPublisher, describe_event, event_scope, raw_topic
from streams.settings import SecuritySettings

TABLE_NAME = "sessions"


@dataclass(frozen=True, slots=True)
class SessionsPipeline:
    table: TableT[bytes, dict[str, Any]]
    tracker: SessionTracker[EventT[bytes]]


def register_sessions(
    app: faust.App,
    catalog: TopicCatalog,
    security: SecuritySettings,
    store: SessionSink,
    codec: WireCodec,
    *,
    backoff: Backoff | None = None,
    carried_from: Mapping[bytes, Mapping[str, Any]] | None = None,
) -> SessionsPipeline:
    """`carried_from`: the `security-users` table, whose old device lists seed the users this
    table has no entry for (`agents.sessions.state.carried_over`)."""
    auth_topic = raw_topic(app, catalog.for_topic("auth.events").name)
    table: TableT[bytes, dict[str, Any]] = app.Table(
        TABLE_NAME,
        partitions=catalog.partitions,
        key_type=bytes,
        help="Sessions, known devices and countries of a user, by user id.",
    )
    sessions_table: SessionsTable = table

    def decode(raw: bytes | None) -> AuthEvent:
        return codec.decode(raw, AuthEvent)

    tracker: SessionTracker[EventT[bytes]] = SessionTracker(
        table=sessions_table,
        decode=decode,
        encode=codec.encode,
        rows=store,
        alerts=TopicPublisher(auth_topic),
        describe=describe_event,
        scope=event_scope,
        max_devices=security.max_devices,
        backoff=backoff or Backoff(),
        carried_from=carried_from,
    )
    return SessionsPipeline(table, tracker)
