"""Wiring of notification routing into a Faust app: request_notifications, route_notifications.

request_notifications reads auth and orders events and writes requests to
`notifications.requests`, keyed by user id. route_notifications reads `users.events`,
`notifications.requests` and `notifications.suppressions` in ONE agent: all are keyed by user id
with the same partition count, so a user's contact updates, the requests its own events cause
(routed in place), the requests from other families and the reports on the user's addresses
reach the same agent instance, in order per topic, next to its tables (`notification_routing`,
each user's contact and routing state, and `notification_suppressions` by user id;
`notification_deferrals` by notification id, written in the user's partition; `contacts`, where
earlier versions kept contacts, read and emptied as users are written: see
`agents.routing.recipients`). A timer releases due deferrals by sending their request record
again (see `agents.routing.route_batch`). Logic lives in the modules it imports.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import faust
from faust.types import AgentT, EventT, TableT

from agents.retry import Backoff
from agents.routing.policy import Deferral
from agents.routing.rendering import TEMPLATE_DIR, TemplateRenderer
from agents.routing.request_batch import RequestBatch
from agents.routing.route_batch import (
    RELEASE_HEADER,
    RouteBatch,
    RouteSinks,
    SuppressionFeed,
    SuppressionSink,
    release_record,
)
from agents.routing.router import Router
from agents.routing.rules import CausingEvent
from agents.routing.template_source import TemplateSource
from schemas.auth import AuthEvent
from schemas.notifications import NotificationRequestEvent
from schemas.orders import OrderEvent
from schemas.suppressions import SuppressionEvent
from schemas.templates import TemplateEvent
from schemas.users import UserEvent
from streams.errors import RetriableError
from streams.kafka.catalog import TopicCatalog
from streams.kafka.wire import WireCodec, local_codec, wire_now
from streams.runtime import (
    TopicPublisher,
    batch_agent,
    batch_size,
    describe_event,
    event_scope,
    raw_topic,
)
from streams.settings import NotificationSettings, WorkerSettings
from streams.templates.live import LiveTemplates, TableSource

log = logging.getLogger(__name__)

REQUEST_AGENT = "request_notifications"
ROUTE_AGENT = "route_notifications"
CONTACTS_TABLE = "contacts"
ROUTING_TABLE = "notification_routing"
DEFERRED_TABLE = "notification_deferrals"
SUPPRESSIONS_TABLE = "notification_suppressions"
# A released record not yet routed is sent again after this long (its first send was lost).
RELEASE_AGAIN_S = 30.0

Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class NotificationsPipeline:
    requester: RequestBatch[EventT[bytes]]
    router: RouteBatch[EventT[bytes]]
    routing: TableT[bytes, dict[str, Any]]
    deferred: TableT[bytes, dict[str, Any]]
    request_agent: AgentT[Any]
    route_agent: AgentT[Any]
    templates: TemplateSource


def _table(app: faust.App, name: str, partitions: int, help_text: str) -> TableT[bytes, Any]:
    table: TableT[bytes, dict[str, Any]] = app.Table(
        name, partitions=partitions, key_type=bytes, help=help_text
    )
    return table


def release_header(event: EventT[bytes]) -> str | None:
    headers = event.message.headers or []
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    for name, value in pairs:
        if name == RELEASE_HEADER and value is not None:
            return bytes(value).decode()
    return None


def register_notifications(
    app: faust.App,
    catalog: TopicCatalog,
    worker: WorkerSettings,
    notifications: NotificationSettings,
    suppression_store: SuppressionSink,
    templates_table: TableSource,
    *,
    codec: WireCodec | None = None,
    clock: Clock = wire_now,
) -> NotificationsPipeline:
    """`suppression_store` is the suppression list's PostgreSQL view; `templates_table` reads
    `notifications.templates` (a `CompactedTopicReader`): the router renders the active versions
    it holds, read to the end before each batch."""
    wire = codec or local_codec()
    users, auth, orders = (
        catalog.for_topic(t) for t in ("users.events", "auth.events", "orders.events")
    )
    requests = catalog.for_topic("notifications.requests")
    suppressions_spec = catalog.for_topic("notifications.suppressions")
    decoders: dict[str, Callable[[bytes | None], CausingEvent]] = {
        auth.name: lambda raw: wire.decode(raw, AuthEvent),
        orders.name: lambda raw: wire.decode(raw, OrderEvent),
    }
    requests_topic = raw_topic(app, requests.name)
    requests_out = TopicPublisher(requests_topic)
    requester: RequestBatch[EventT[bytes]] = RequestBatch(
        decoders=decoders,
        encode=wire.encode,
        requests=requests_out,
        dead_letters={
            spec.name: TopicPublisher(raw_topic(app, catalog.dead_letters(spec).name))
            for spec in (auth, orders)
        },
        describe=describe_event,
        clock=clock,
        backoff=Backoff(),
    )
    partitions = catalog.partitions
    routing = _table(
        app,
        ROUTING_TABLE,
        partitions,
        "By user id: contact points and preferences (`contact`), routed ids, send times,"
        " deferrals.",
    )
    legacy_contacts = _table(
        app,
        CONTACTS_TABLE,
        partitions,
        "Contacts by user id as earlier versions kept them: read until the user's"
        " notification_routing entry takes its contact over, then deleted; never set.",
    )
    deferred = _table(app, DEFERRED_TABLE, partitions, "Deferred notifications by notification id.")
    suppressions = _table(app, SUPPRESSIONS_TABLE, partitions, "Suppressed addresses by user id.")
    live = LiveTemplates(templates_table)
    templates = TemplateSource(
        live,
        lambda raw: wire.decode(raw, TemplateEvent),
        TopicPublisher(raw_topic(app, catalog.templates.name)),
        wire.encode,
        TEMPLATE_DIR,
        clock,
        Backoff(),
    )
    renderer = TemplateRenderer(fallback_locale=notifications.fallback_locale, catalog=live.catalog)
    router: RouteBatch[EventT[bytes]] = RouteBatch(
        router=Router(notifications, renderer),
        users_topic=users.name,
        decode_user=lambda raw: wire.decode(raw, UserEvent),
        decode_request=lambda raw: wire.decode(raw, NotificationRequestEvent),
        encode=wire.encode,
        routing=routing,
        legacy_contacts=legacy_contacts,
        deferred=deferred,
        suppressions=SuppressionFeed(
            topic=suppressions_spec.name,
            decode=lambda raw: wire.decode(raw, SuppressionEvent),
            table=suppressions,
            store=suppression_store,
        ),
        sinks=RouteSinks(
            dispatch=TopicPublisher(
                raw_topic(app, catalog.for_topic("notifications.dispatch").name)
            ),
            status=TopicPublisher(raw_topic(app, catalog.for_topic("notifications.status").name)),
            requests=requests_out,
            request_dead_letters=TopicPublisher(
                raw_topic(app, catalog.dead_letters(requests).name)
            ),
            user_dead_letters=TopicPublisher(raw_topic(app, catalog.dead_letters(users).name)),
            suppression_dead_letters=TopicPublisher(
                raw_topic(app, catalog.dead_letters(suppressions_spec).name)
            ),
        ),
        describe=describe_event,
        release_of=release_header,
        scope=event_scope,
        clock=clock,
        backoff=Backoff(),
    )
    size = batch_size(worker)
    request_agent = batch_agent(
        app, raw_topic(app, auth.name, orders.name), REQUEST_AGENT, requester.process, size
    )

    async def route(batch: Sequence[EventT[bytes]]) -> None:
        await templates.refresh()  # a version activated before this batch renders in it
        await router.process(batch)

    route_source = raw_topic(app, users.name, requests.name, suppressions_spec.name)
    route_agent = batch_agent(app, route_source, ROUTE_AGENT, route, size)
    # At start too, so an empty topic gets the files before any notification asks for them.
    app.task(templates.refresh)
    releases = DeferralReleaser(deferred, requests_out, clock)
    app.timer(notifications.deferral_check_interval_s, name="release_deferred_notifications")(
        releases.release_due
    )
    return NotificationsPipeline(
        requester, router, routing, deferred, request_agent, route_agent, templates
    )


class DeferralReleaser:
    """The periodic check: sends the record of every due deferral (quiet hours over, or the wait
    for a contact over) back to `notifications.requests`, where the router routes it. It only
    reads the table: entries leave it when the router handles their release."""

    def __init__(
        self, deferred: TableT[bytes, Any], requests: TopicPublisher, clock: Clock
    ) -> None:
        self._deferred = deferred
        self._requests = requests
        self._clock = clock
        self._sent_at: dict[str, float] = {}

    async def release_due(self) -> None:
        now_s = self._clock().timestamp()
        mono = time.monotonic()
        due = []
        for value in list(self._deferred.values()):
            entry = Deferral.from_table(value)
            last = self._sent_at.get(entry.notification_id)
            if entry.due_s <= now_s and (last is None or mono - last > RELEASE_AGAIN_S):
                due.append(entry)
        if not due:
            return
        try:
            await self._requests.send_all([release_record(entry) for entry in due])
        except RetriableError as exc:  # the next tick tries again
            log.warning("releasing %d deferred notifications failed: %s", len(due), exc)
            return
        for entry in due:
            self._sent_at[entry.notification_id] = mono
        live = {Deferral.from_table(v).notification_id for v in self._deferred.values()}
        self._sent_at = {k: v for k, v in self._sent_at.items() if k in live}
        log.info("released %d deferred notifications", len(due))
