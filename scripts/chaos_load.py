"""The chaos run's upstream: a steady mixed load of signed webhooks, and what was acknowledged.

It plays the upstream platforms as they behave: each webhook is retried under its own webhook id
(the same body, freshly signed) until the API answers 2xx, so an outage delays inputs rather than
dropping them. Only inputs answered 2xx are written to the ledger the checker reads; the rest are
counted as never acknowledged (an upstream would still be retrying them).

The mix, per second of load: `orders_per_s` orders created (each paid `pay_after_s` later, for a
user this run created), `users_per_s` users created (each owed a welcome email), and a burst of
`burst_failures` failed logins for a fresh user every `burst_every_s` (each owed a block). Every
failed login comes from its own address, so no IP rule fires and each burst blocks one user.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp

from api.signature import signed_headers

# An upstream's retries: exponential backoff with jitter, honouring Retry-After (capped).
RETRY_FIRST_S = 0.5
RETRY_MAX_S = 8.0
REQUEST_TIMEOUT_S = 15.0


@dataclass(frozen=True, slots=True)
class LoadShape:
    """How much of each input per second, and for how long."""

    duration_s: float
    orders_per_s: float = 3.0
    users_per_s: float = 3.0
    burst_every_s: float = 5.0
    burst_failures: int = 5
    pay_after_s: float = 2.0
    # An input still unacknowledged this long after the load ends is given up on.
    retry_for_s: float = 120.0


@dataclass(frozen=True, slots=True)
class Acknowledged:
    """One input the API answered 2xx: what the checker may hold the pipeline to."""

    family: str
    event_type: str
    webhook_id: str
    key: str
    occurred_at: datetime
    acked_at_s: float
    attempts: int
    body: dict[str, Any]


@dataclass
class LoadLedger:
    """Every input sent, and those acknowledged, in order of acknowledgement."""

    run: str
    acknowledged: list[Acknowledged] = field(default_factory=list)
    sent: int = 0
    given_up: int = 0
    answers: dict[int, int] = field(default_factory=dict)
    # When each answer other than 2xx came (wall clock): how long an outage refused webhooks.
    refused_at_s: list[float] = field(default_factory=list)

    def note_answer(self, status: int) -> None:
        self.answers[status] = self.answers.get(status, 0) + 1
        if not 200 <= status < 300:
            self.refused_at_s.append(time.time())

    def to_json(self) -> dict[str, Any]:
        return {
            "run": self.run,
            "sent": self.sent,
            "given_up": self.given_up,
            "answers": {str(k): v for k, v in sorted(self.answers.items())},
            "acknowledged": [
                {
                    "family": a.family,
                    "event_type": a.event_type,
                    "webhook_id": a.webhook_id,
                    "key": a.key,
                    "occurred_at": a.occurred_at.isoformat(),
                    "acked_at_s": a.acked_at_s,
                    "attempts": a.attempts,
                }
                for a in self.acknowledged
            ],
        }


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class LoadDriver:
    """Posts the mix to the API at `api_url`, signed with `secrets` (family -> whsec_…)."""

    def __init__(self, api_url: str, secrets: dict[str, str], shape: LoadShape, run: str) -> None:
        self.api_url = api_url
        self.secrets = secrets
        self.shape = shape
        self.run = run
        self.ledger = LoadLedger(run)
        self._users_acked: list[str] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._random = random.Random(run)  # noqa: S311 - picks users and addresses
        self._give_up_at_s = 0.0

    async def run_load(self) -> LoadLedger:
        """Send the mix for `duration_s`, then wait for the inputs still being retried."""
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
        connector = aiohttp.TCPConnector(limit=64)
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            try:
                await self._drive(session)
            finally:  # interrupted: no input keeps retrying behind the caller's back
                for task in self._tasks:
                    task.cancel()
        return self.ledger

    async def _drive(self, session: aiohttp.ClientSession) -> None:
        """The mix for `duration_s`, each input a task retrying until acknowledged."""
        started = time.monotonic()
        self._give_up_at_s = started + self.shape.duration_s + self.shape.retry_for_s
        owed = {"orders": 0.0, "users": 0.0, "bursts": 0.0}
        tick_s = 0.1
        while (elapsed := time.monotonic() - started) < self.shape.duration_s:
            owed["orders"] += self.shape.orders_per_s * tick_s
            owed["users"] += self.shape.users_per_s * tick_s
            owed["bursts"] += tick_s / self.shape.burst_every_s
            while owed["users"] >= 1:
                owed["users"] -= 1
                self._spawn(self._user(session))
            while owed["orders"] >= 1:
                owed["orders"] -= 1
                self._spawn(self._order(session))
            while owed["bursts"] >= 1:
                owed["bursts"] -= 1
                self._spawn(self._burst(session))
            await asyncio.sleep(max(0.0, started + elapsed + tick_s - time.monotonic()))
        while self._tasks:
            await asyncio.gather(*list(self._tasks))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _user(self, session: aiohttp.ClientSession) -> None:
        user_id = f"chaos-{self.run}-u{uuid.uuid4().hex[:10]}"
        body = {
            "type": "user.created",
            "occurred_at": _iso(_now()),
            "user": {
                "id": user_id,
                "email": f"{user_id}@example.com",
                "locale": "en",
                "time_zone": "UTC",
            },
        }
        if await self._post(session, "users", "user.created", user_id, body):
            self._users_acked.append(user_id)

    def _known_user(self) -> str:
        if self._users_acked:
            return self._random.choice(self._users_acked)
        return f"chaos-{self.run}-nobody"

    async def _order(self, session: aiohttp.ClientSession) -> None:
        order_id = f"chaos-{self.run}-o{uuid.uuid4().hex[:10]}"
        order = {
            "id": order_id,
            "user_id": self._known_user(),
            "status": "pending",
            "currency": "EUR",
            "total_minor": 1200,
            "items": [{"sku": "sku-chaos", "quantity": 2, "unit_price_minor": 600}],
        }
        created = {"type": "order.created", "occurred_at": _iso(_now()), "order": order}
        if not await self._post(session, "orders", "order.created", order_id, created):
            return
        await asyncio.sleep(self.shape.pay_after_s)
        paid = {
            "type": "order.paid",
            "occurred_at": _iso(_now()),
            "order": order | {"status": "paid"},
        }
        await self._post(session, "orders", "order.paid", order_id, paid)

    async def _burst(self, session: aiohttp.ClientSession) -> None:
        user_id = self._known_user()
        for _ in range(self.shape.burst_failures):
            ip = ".".join(str(self._random.randrange(1, 255)) for _ in range(3))
            ip = f"10.{ip}"
            body = {
                "type": "auth.login-failed",
                "occurred_at": _iso(_now()),
                "auth": {"user_id": user_id, "ip": ip, "reason": "bad_password"},
            }
            await self._post(session, "auth", "auth.login-failed", user_id, body)

    async def _post(
        self,
        session: aiohttp.ClientSession,
        family: str,
        event_type: str,
        key: str,
        body: dict[str, Any],
    ) -> bool:
        """POST until 2xx (True) or the retry time is over (False), under one webhook id."""
        webhook_id = f"msg_{uuid.uuid4().hex}"
        raw = json.dumps(body).encode()
        self.ledger.sent += 1
        attempts = 0
        while time.monotonic() < self._give_up_at_s:
            attempts += 1
            headers = signed_headers(self.secrets[family], webhook_id, int(time.time()), raw)
            headers["Content-Type"] = "application/json"
            status, retry_after_s = 0, None
            try:
                async with session.post(
                    f"{self.api_url}/v1/webhooks/{family}", data=raw, headers=headers
                ) as answer:
                    status = answer.status
                    retry_after = answer.headers.get("Retry-After", "")
                    retry_after_s = float(retry_after) if retry_after.isdigit() else None
                    await answer.read()
            except (aiohttp.ClientError, TimeoutError):
                status = 0
            self.ledger.note_answer(status)
            if 200 <= status < 300:
                self.ledger.acknowledged.append(
                    Acknowledged(
                        family,
                        event_type,
                        webhook_id,
                        key,
                        datetime.fromisoformat(body["occurred_at"]),
                        time.time(),
                        attempts,
                        body,
                    )
                )
                return True
            pause_s = min(RETRY_MAX_S, RETRY_FIRST_S * 2 ** (attempts - 1))
            pause_s = max(pause_s, min(retry_after_s or 0.0, RETRY_MAX_S))
            await asyncio.sleep(pause_s * self._random.uniform(0.5, 1.0))
        self.ledger.given_up += 1
        return False
