"""Admitting a webhook: its source's rate limit and its ledger claim in one Redis script call.

Every accepted webhook took a rate-limit slot and then claimed its id in the ledger: two script
calls one after the other, about 100 µs of the API's CPU per webhook together, most of it
redis-py's per-command cost; one call costs about 65 (`bench_ingest_stages.py` times both).
Both are steps of Lua functions (`gcra`, `claim`), so one script runs them in that order: the
limit first, and the claim only for a request the limit allowed, exactly as the two calls did.
A refused request leaves no claim; a duplicate still takes a slot, as before. While another copy
holds the claim, the rest is the ledger's own polling. The script touches two keys, which one
Redis (what `redis_client` connects to) allows; a Redis Cluster would need them in one slot.
"""

from __future__ import annotations

from dataclasses import dataclass

from streams.stores.rate_limiter import (
    GCRA_FUNCTION_LUA,
    RateDecision,
    RateLimitedError,
    RateLimiter,
    parse_reply,
)
from streams.stores.webhook_ledger import CLAIM_FUNCTION_LUA, Claim, Receipt, WebhookLedger

# KEYS: the source's TAT, the webhook's ledger entry; ARGV: the GCRA step's three (`LimitStep`),
# then the claim's token and lease (ms). Returns gcra's reply, with the claim's as a fifth
# element when allowed: '' when this call took the claim, else the entry's value.
ADMIT_LUA = (
    GCRA_FUNCTION_LUA
    + CLAIM_FUNCTION_LUA
    + """
local decision = gcra(KEYS[1], ARGV[1], ARGV[2], ARGV[3])
if decision[1] == 0 then return decision end
decision[5] = claim(KEYS[2], ARGV[4], ARGV[5]) or ''
return decision
"""
)


@dataclass(frozen=True, slots=True)
class Admitted:
    """An allowed webhook: the limit's decision (None with limits off) and its claim, or the
    receipt of the copy that was delivered before it."""

    decision: RateDecision | None
    outcome: Claim | Receipt


class WebhookAdmission:
    """The limiter's step and the ledger's claim for one webhook, in one call to the ledger's
    Redis (the limiter's keys live in the same Redis)."""

    def __init__(self, limiter: RateLimiter, ledger: WebhookLedger) -> None:
        self._limiter = limiter
        self._ledger = ledger
        self._script = ledger.register_script(ADMIT_LUA)

    async def admit(self, source: str, webhook_id: str) -> Admitted:
        """Take a slot of `source`'s rate and claim `webhook_id`; `RateLimitedError` (nothing
        claimed) when over the limit, `DeliveryInProgressError` as `WebhookLedger.claim`."""
        ledger = self._ledger
        step = self._limiter.step(source)
        if step is None:
            return Admitted(None, await ledger.claim(source, webhook_id))
        claim = ledger.new_claim(source, webhook_id)
        reply = await ledger.run_script(
            self._script, [step.key, claim.key], [*step.args, claim.token, ledger.lease_ms]
        )
        decision = parse_reply(reply[:4], step.limit)
        if not decision.allowed:
            raise RateLimitedError(source, decision)
        return Admitted(decision, await ledger.claim_after(source, webhook_id, claim, reply[4]))
