"""Webhooks answered 503 whose records may still reach Kafka: their claims wait for the outcome.

A send with no acknowledgement within the delivery timeout is answered 503, but the client still
holds the record and retries it (a broker restarting): it may arrive seconds later. Releasing the
webhook's ledger claim at the 503 let the sender's retry produce a second copy (the chaos run's
broker restart: three webhooks each counted twice in the metric windows). Instead the claim is
kept, its lease renewed, until the client knows: delivered, the receipt is recorded and the
retry is answered as a duplicate with the first copy's event id; failed, the claim is released
and the retry produces it. Meanwhile a retry waits its bounded time and is told to try again.

Bounded by `settle_s`: an outcome still unknown then (or at shutdown) is given up and the claim
left to lapse with its lease, which is what happened to every such claim before.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Protocol
from uuid import UUID

from streams.errors import ServiceUnavailableError
from streams.kafka.event_producer import RecordPosition
from streams.stores.webhook_ledger import Claim, Receipt

log = logging.getLogger(__name__)

# A record's outcome: its position already, or the client's answer to come.
Outcome = RecordPosition | asyncio.Future[RecordPosition]


class HeldLedger(Protocol):
    @property
    def lease_s(self) -> float: ...

    async def hold(self, claim: Claim) -> bool: ...

    async def complete(self, claim: Claim, receipt: Receipt) -> bool: ...

    async def release(self, claim: Claim) -> None: ...


class _LapsedError(Exception):
    """The claim lapsed before the outcome was known: another copy may hold it now."""


class Settlements:
    """The claims waiting for their records' outcomes, one task each, owned by the app."""

    def __init__(
        self,
        ledger: HeldLedger,
        *,
        settle_s: float,
        on_settled: Callable[[str], None] = lambda outcome: None,
    ) -> None:
        """`on_settled(outcome)`: told each settlement's end, "recorded" (the record arrived),
        "released" (it did not) or "given_up" (unknown: the claim lapses)."""
        self._ledger = ledger
        self._settle_s = settle_s
        self._on_settled = on_settled
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def pending(self) -> int:
        return len(self._tasks)

    def settle(self, claim: Claim, event_id: UUID, outcomes: Sequence[Outcome]) -> None:
        """Keep `claim` until every outcome is known, then record the receipt or release it."""
        task = asyncio.ensure_future(self._settle(claim, event_id, list(outcomes)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self, grace_s: float) -> None:
        """Let pending settlements finish for up to `grace_s`, then give the rest up."""
        if self._tasks:
            _, late = await asyncio.wait(set(self._tasks), timeout=grace_s)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)

    async def _settle(self, claim: Claim, event_id: UUID, outcomes: list[Outcome]) -> None:
        try:
            positions = await self._outcomes(claim, outcomes)
        except (TimeoutError, _LapsedError, asyncio.CancelledError) as exc:
            log.warning("webhook claim %s given up: its record's outcome is unknown", claim.key)
            self._on_settled("given_up")
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        except ServiceUnavailableError as exc:  # the client's answer: not delivered
            log.info("webhook claim %s released: its record was not delivered: %r", claim.key, exc)
            self._on_settled("released")
            await release_claim(self._ledger, claim)
            return
        try:
            recorded = await self._ledger.complete(claim, Receipt(event_id, positions[0]))
        except ServiceUnavailableError as exc:
            log.error("webhook %s delivered late but not recorded: %s", claim.key, exc)
            recorded = False
        if recorded:
            self._on_settled("recorded")
        else:  # the claim lapsed meanwhile: a retry may have produced it again
            self._on_settled("given_up")

    async def _outcomes(self, claim: Claim, outcomes: list[Outcome]) -> list[RecordPosition]:
        """Every position, renewing the claim's lease while any is unknown."""
        waiting = {o for o in outcomes if isinstance(o, asyncio.Future)}
        async with asyncio.timeout(self._settle_s):
            while waiting:
                # At once: the send took the delivery timeout, which the lease outlasts a little.
                if not await _hold(self._ledger, claim):
                    raise _LapsedError
                _, waiting = await asyncio.wait(waiting, timeout=self._ledger.lease_s / 3)
        return [o if isinstance(o, RecordPosition) else o.result() for o in outcomes]


async def _hold(ledger: HeldLedger, claim: Claim) -> bool:
    """Renew the claim's lease; False once it has lapsed (nothing left to keep)."""
    try:
        if await ledger.hold(claim):
            return True
    except ServiceUnavailableError as exc:
        log.warning("could not renew webhook claim %s: %s", claim.key, exc)
        return True  # Redis away: the lease may still stand; try again next time
    log.warning("webhook claim %s lapsed while its record's outcome was unknown", claim.key)
    return False


class ReleasingLedger(Protocol):
    async def release(self, claim: Claim) -> None: ...


async def release_claim(ledger: ReleasingLedger, claim: Claim) -> None:
    """Give the claim back; a failure to is logged (the claim still lapses with its lease)."""
    try:
        await ledger.release(claim)
    except ServiceUnavailableError as exc:
        log.error("could not release ledger claim %s: %s", claim.key, exc)
