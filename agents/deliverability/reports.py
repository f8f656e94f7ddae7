"""One batch of `report_undeliverable`: the tracker's bounce and complaint transitions ->
`suppression.reported` events on `notifications.suppressions`, keyed by user id.

`track_deliveries` turns a provider's receipt into a status transition only once it matched the
receipt to a send of the notification (`receipt_matching`), and publishes it with its own
`source` header. Those transitions are the only ones that can say `bounced` or `spam`, so this
agent looks at nothing else (`is_own_record`, before decoding), and re-keys each by its user for
the router, which holds the user's addresses and suppressions. The report's id derives from the
transition's, so a redelivered transition reports again under the same id, and its event time is
the provider's, so the router's fold of it is the same however often it comes.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar

from pydantic import BaseModel

from agents.dead_letters import set_aside
from agents.retry import Backoff, Sleep, retry_retriable
from agents.routing.suppressions import is_soft_bounce
from schemas.notifications import NotificationStatusEvent
from schemas.suppressions import DeliverabilityProblem, SuppressionEvent, SuppressionReported
from streams.errors import PoisonError, RetriableError
from streams.runtime import OutgoingRecord, RecordSink, SourceRecord

E = TypeVar("E")
SOURCE = "agent:report_undeliverable"
REPORT_NAMESPACE = uuid.UUID("9a3c6e1f-2b4d-4c8e-8f1a-5d7b9e0c3a21")
# What the tracker writes when a receipt overtook every status naming the user.
UNKNOWN_USER = "unknown"


def problem_of(state: str, reason: str | None) -> DeliverabilityProblem | None:
    """What a delivery state says about the address: None when nothing."""
    if state == "spam":
        return "complaint"
    if state == "bounced":
        return "soft_bounce" if is_soft_bounce(reason) else "hard_bounce"
    return None


def report_for(status: NotificationStatusEvent, now: datetime) -> SuppressionEvent | None:
    """The suppression report a transition amounts to, or None."""
    payload = status.payload
    problem = problem_of(payload.state, payload.reason)
    if problem is None or payload.channel is None or payload.user_id == UNKNOWN_USER:
        return None
    return SuppressionEvent(
        event_id=uuid.uuid5(REPORT_NAMESPACE, str(status.event_id)),
        event_type="suppression.reported",
        occurred_at=status.occurred_at,
        ingested_at=now,
        source=SOURCE,
        correlation_id=status.correlation_id,
        causation_id=str(status.event_id),
        payload=SuppressionReported(
            user_id=payload.user_id,
            notification_id=payload.notification_id,
            channel=payload.channel,
            problem=problem,
            reason=payload.reason,
        ),
    )


@dataclass(slots=True)
class ReportStats:
    batches: int = 0
    events: int = 0
    reports: int = 0
    dead_letters: int = 0
    retries: int = 0


class ReportBatch(Generic[E]):
    """report_undeliverable: the tracker's transitions -> suppression reports by user."""

    def __init__(
        self,
        *,
        decode: Callable[[bytes | None], NotificationStatusEvent],
        encode: Callable[[BaseModel], bytes],
        reports: RecordSink,
        dead_letters: RecordSink,
        describe: Callable[[E], SourceRecord],
        backoff: Backoff,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._decode = decode
        self._encode = encode
        self._reports = reports
        self._dead_letters = dead_letters
        self._describe = describe
        self._backoff = backoff
        self._sleep = sleep
        self._clock = clock
        self.stats = ReportStats()

    async def process(self, batch: Sequence[E]) -> None:
        now = self._clock()
        out: list[OutgoingRecord] = []
        rejected: list[OutgoingRecord] = []
        for item in batch:
            record = self._describe(item)
            try:
                status = self._decode(record.value)
            except PoisonError as exc:
                rejected.append(set_aside(record, exc))
                continue
            report = report_for(status, now)
            if report is not None:
                key = report.payload.user_id.encode()
                out.append(OutgoingRecord(key=key, value=self._encode(report)))
        await self._send(self._dead_letters, rejected, "dead letters")
        await self._send(self._reports, out, "suppression reports")
        self.stats.batches += 1
        self.stats.events += len(batch)
        self.stats.reports += len(out)
        self.stats.dead_letters += len(rejected)

    async def _send(self, sink: RecordSink, records: list[OutgoingRecord], what: str) -> None:
        if not records:
            return

        def count_retry(_error: RetriableError, _delay_s: float) -> None:
            self.stats.retries += 1

        await retry_retriable(
            lambda: sink.send_all(records),
            backoff=self._backoff,
            what=f"report_undeliverable: {what}",
            sleep=self._sleep,
            on_retry=count_retry,
        )
