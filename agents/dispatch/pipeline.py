"""Wiring of notification dispatch into a Faust app: the main agent and one per retry topic.

`dispatch_notifications` sends what arrives on `notifications.dispatch` at once. Failed sends are
re-produced on a delayed retry topic (`notifications.dispatch.retry-1s`, ...), each read by its
own `retry_notifications_<delay>` agent that first waits until its batch is due (the record's
timestamp plus the topic's delay, or the Retry-After due time). The waiting happens only in that
retry topic's agent, so neither the main topic nor the other retry topics are held up; and since
a topic's records all wait the same delay, those queued behind a waiting one are due no sooner.

The logic is in `notification_dispatch`; the providers are reached through `ProviderClients`,
which owns the worker's one aiohttp session.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import aiohttp
import faust
from faust.types import AgentT, EventT, TableT, TopicT
from mode import Service

from agents.dispatch.dispatcher import (
    DispatchRecord,
    NotificationDispatcher,
    batch_wait_s,
)
from agents.retry import Backoff
from schemas.notifications import NotificationDispatchEvent
from streams.kafka.catalog import NOTIFICATIONS_DISPATCH, TopicCatalog
from streams.kafka.wire import WireCodec, local_codec
from streams.providers.base import ChannelSender, OutboundMessage, SendResult
from streams.providers.channels import ChannelSenders, build_channel_senders, provider_senders
from streams.providers.circuit_breaker import BreakerState, CircuitBreaker
from streams.providers.http import create_client_session
from streams.runtime import (
    Batch,
    BatchProcess,
    TopicPublisher,
    batch_agent,
    batch_size,
    describe_event,
    event_scope,
    raw_topic,
)
from streams.settings import DispatchSettings, ProviderSettings, WorkerSettings

DISPATCH_AGENT = "dispatch_notifications"
RETRY_AGENT = "retry_notifications"
LEDGER_TABLE = "sent_ledger"


class ProviderClients(Service):
    """Owns the worker's one aiohttp session and the channel senders built on it.

    The session is created on first use, inside the running loop (aiohttp requires it), and
    closed when the app stops (this service is a dependency of the app).
    """

    def __init__(self, dispatch: DispatchSettings, providers: ProviderSettings) -> None:
        super().__init__()
        self._dispatch = dispatch
        self._providers = providers
        self._session: aiohttp.ClientSession | None = None
        self._channels: ChannelSenders | None = None
        self._senders: Mapping[str, ChannelSender] = {}

    @property
    def channels(self) -> ChannelSenders:
        if self._channels is None:
            dispatch, providers = self._dispatch, self._providers
            self._session = create_client_session(dispatch.connection_pool_size, dispatch.timeout_s)
            self._senders = provider_senders(self._session, providers, dispatch.timeout_s)
            self._channels = build_channel_senders(self._senders, providers, dispatch)
        return self._channels

    async def send(self, message: OutboundMessage) -> SendResult:
        return await self.channels.send(message)

    def breakers(self) -> Mapping[str, CircuitBreaker]:
        """The providers' breakers, for the metrics and reports (none before the first send
        builds them)."""
        return {} if self._channels is None else self._channels.breakers()

    def open_breakers(self) -> dict[str, str]:
        """Provider -> state of the breakers that are not closed (the readiness probe's)."""
        states = ((name, breaker.state) for name, breaker in self.breakers().items())
        return {name: state.value for name, state in states if state is not BreakerState.CLOSED}

    def reset(self, provider: str) -> bool:
        """Close `provider`'s breaker (an operator's command); False if there is none yet."""
        return self._channels is not None and self._channels.reset(provider)

    async def on_stop(self) -> None:
        for sender in self._senders.values():
            await sender.close()
        if self._session is not None:
            await self._session.close()


@dataclass(frozen=True, slots=True)
class DispatchPipeline:
    topic: TopicT
    retry_topics: Sequence[TopicT]
    dead_letter_topic: TopicT
    agents: Sequence[AgentT[Any]]
    dispatcher: NotificationDispatcher
    clients: ProviderClients
    ledger: TableT[bytes, dict[str, Any]]


def dispatch_record(event: EventT[bytes]) -> DispatchRecord:
    message = event.message
    raw_headers: Any = message.headers or ()
    items = raw_headers.items() if isinstance(raw_headers, dict) else raw_headers
    headers = tuple((str(name), _header_bytes(value)) for name, value in items)
    return DispatchRecord(
        describe_event(event), headers, int(message.timestamp * 1000), partial(event_scope, event)
    )


def _header_bytes(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode() if value is not None else b""


def retry_agent_name(delay_s: float) -> str:
    return f"{RETRY_AGENT}_{delay_s:g}s"


def register_dispatch(
    app: faust.App,
    catalog: TopicCatalog,
    worker: WorkerSettings,
    dispatch: DispatchSettings,
    providers: ProviderSettings,
    *,
    codec: WireCodec | None = None,
) -> DispatchPipeline:
    """`catalog` must name the retry topics of `dispatch.retry_delays_s`: one agent reads each."""
    wire = codec or local_codec()
    delays_s = dispatch.retry_delays_s
    topic = raw_topic(app, catalog.for_topic(NOTIFICATIONS_DISPATCH).name)
    retry_topics = [raw_topic(app, spec.name) for spec in catalog.notification_retries()]
    dead_letter_topic = raw_topic(app, catalog.notifications_dlq.name)
    status_topic = raw_topic(app, catalog.for_topic("notifications.status").name)
    clients = ProviderClients(dispatch, providers)
    app.add_dependency(clients)
    # Keyed by notification id and attempt, in the partition of the notification's dispatch
    # and retry records (every topic of the catalog has its partition count).
    ledger: TableT[bytes, dict[str, Any]] = app.Table(
        LEDGER_TABLE,
        partitions=catalog.partitions,
        key_type=bytes,
        help="Accepted sends by notification id and attempt: never sent twice.",
        retention_s=worker.notification_tables_retention_s,
    )
    dispatcher = NotificationDispatcher(
        sender=clients,
        decode=lambda raw: wire.decode(raw, NotificationDispatchEvent),
        encode=wire.encode,
        status=TopicPublisher(status_topic),
        retries=[TopicPublisher(retry_topic) for retry_topic in retry_topics],
        dead_letters=TopicPublisher(dead_letter_topic),
        delays_s=delays_s,
        backoff=Backoff(),
        ledger=ledger,
    )
    size = batch_size(worker)

    async def dispatch_notifications(events: Batch) -> None:
        await dispatcher.process([dispatch_record(event) for event in events])

    def retry_notifications(delay_s: float) -> BatchProcess:
        async def retry(events: Batch) -> None:
            records = [dispatch_record(event) for event in events]
            wait_s = batch_wait_s(records, delay_s, time.time())
            if wait_s > 0:
                await asyncio.sleep(wait_s)
            await dispatcher.process(records)

        return retry

    agents = [batch_agent(app, topic, DISPATCH_AGENT, dispatch_notifications, size)]
    for delay_s, retry_topic in zip(delays_s, retry_topics, strict=True):
        name = retry_agent_name(delay_s)
        agents.append(batch_agent(app, retry_topic, name, retry_notifications(delay_s), size))
    return DispatchPipeline(
        topic, retry_topics, dead_letter_topic, agents, dispatcher, clients, ledger
    )
