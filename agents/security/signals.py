"""The security rules as plain functions: an auth event and a table entry in, decisions out.

Failed-login bursts, per user (entries keyed by user id, fed by `auth.events`) and per IP
(entries keyed by IP, fed by the re-keyed copy of the failures). The new-device and new-country
rules read a user's sessions and devices, so they live with that fold, in `agents.sessions`
(one source of truth for what a user's devices are); they use `suspicious_login` from here.

Windows are exact sliding windows over event time: an entry keeps the timestamps (and ids) of the
newest `threshold` failures, and they are a burst when the oldest and the newest of them are less
than `window` apart. A tumbling window would miss a burst straddling a boundary, and a hopping
one reports the same burst once per hop; the timestamps answer "N within W" exactly, in any
arrival order, and keeping only the newest N keeps each table value (and changelog record) small.

Once per burst: after an alert, the key raises no new one until the window since that alert has
passed. Replays are harmless: a failure whose id the entry already holds is not counted again,
and if it is the one that triggered an alert, the alert is produced again with the same
deterministic event id, so consumers can drop the copy (at-least-once, never doubled by id).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from schemas.auth import AuthEvent, LoginFailed, SuspiciousLogin
from streams.settings import SecuritySettings
from streams.stores.block_store import Block

SOURCE = "tributary.security"
SUSPICIOUS = "auth.suspicious-login"
REASON_USER_BURST = "brute-force-user"
REASON_IP_BURST = "brute-force-ip"
REASON_NEW_DEVICE = "new-device"
# The most event ids an alert can name (the contract's limit).
MAX_RELATED = 1000
# Fixed forever: alert ids derive from it, and a replay must find the same ids.
ALERT_NAMESPACE = uuid.UUID("5b0f4c52-3f7e-4b8e-9f57-2f3a2d6c9e41")

Entry = dict[str, Any]
Scope = Literal["user", "ip"]


@dataclass(frozen=True, slots=True)
class Decisions:
    """What one event leads to; `entry` is the key's new table value, None when unchanged."""

    entry: Entry | None = None
    alerts: tuple[AuthEvent, ...] = ()
    blocks: tuple[Block, ...] = ()
    # A failed login must also be counted per IP, on the stream keyed by IP.
    forward_by_ip: bool = False


@dataclass(frozen=True, slots=True)
class Failure:
    at_ms: int
    event_id: str
    user_id: str


@dataclass(slots=True)
class FailureWindow:
    """The most recent failures of one key (oldest first) and its last alert."""

    failures: list[Failure] = field(default_factory=list)
    alerted_ms: int | None = None
    trigger: str | None = None

    @classmethod
    def from_entry(cls, entry: Mapping[str, Any] | None) -> FailureWindow:
        if not entry:
            return cls()
        failures = [Failure(int(f[0]), str(f[1]), str(f[2])) for f in entry.get("failures", [])]
        return cls(failures, entry.get("alerted_ms"), entry.get("trigger"))

    def to_entry(self) -> Entry:
        return {
            "failures": [[f.at_ms, f.event_id, f.user_id] for f in self.failures],
            "alerted_ms": self.alerted_ms,
            "trigger": self.trigger,
        }


@dataclass(frozen=True, slots=True)
class Count:
    """The outcome of counting one failure: `changed` (store the window), `burst` (alert) and
    the failures that make the burst."""

    changed: bool
    burst: bool
    in_window: tuple[Failure, ...] = ()


def count_failure(window: FailureWindow, failure: Failure, threshold: int, window_ms: int) -> Count:
    """Add `failure` to `window` (mutated) and say whether it completes a new burst.

    The window keeps the newest `threshold` failures by event time, so "N within W" is exactly
    "the oldest and newest kept are less than W apart" — whatever order they arrived in, which
    matters per IP: that stream merges failures from every partition of `auth.events`.
    """
    if any(f.event_id == failure.event_id for f in window.failures):
        # A replay: counted already; repeat the alert only if this event raised it.
        replayed_trigger = failure.event_id == window.trigger
        return Count(False, replayed_trigger, tuple(window.failures) if replayed_trigger else ())
    full = len(window.failures) >= threshold
    if full and failure.at_ms < window.failures[0].at_ms:
        # Older than every kept failure: it cannot change any decision about the newest ones.
        return Count(False, False)
    window.failures.append(failure)
    window.failures.sort(key=lambda f: f.at_ms)
    del window.failures[:-threshold]
    oldest_ms, newest_ms = window.failures[0].at_ms, window.failures[-1].at_ms
    within = len(window.failures) == threshold and newest_ms - oldest_ms < window_ms
    quiet = window.alerted_ms is None or newest_ms >= window.alerted_ms + window_ms
    if not (within and quiet):
        return Count(True, False)
    window.alerted_ms = newest_ms
    window.trigger = failure.event_id
    return Count(True, True, tuple(window.failures))


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def alert_id(reason: str, key: str, trigger_event_id: uuid.UUID | str) -> uuid.UUID:
    return uuid.uuid5(ALERT_NAMESPACE, f"{reason}|{key}|{trigger_event_id}")


def suspicious_login(trigger: AuthEvent, key: str, payload: Mapping[str, Any]) -> AuthEvent:
    """The alert about `trigger`; every field derives from it, so a replay builds equal bytes."""
    reason = str(payload["reason"])
    return AuthEvent.model_validate(
        {
            "event_id": alert_id(reason, key, trigger.event_id),
            "event_type": SUSPICIOUS,
            "occurred_at": trigger.occurred_at,
            "ingested_at": trigger.ingested_at,
            "source": SOURCE,
            "correlation_id": trigger.correlation_id,
            "causation_id": str(trigger.event_id),
            "payload": SuspiciousLogin.model_validate(dict(payload)),
        }
    )


def _burst_decisions(
    event: AuthEvent,
    failed: LoginFailed,
    scope: Scope,
    count: Count,
    threshold: int,
    window_s: int,
    config: SecuritySettings,
) -> tuple[tuple[AuthEvent, ...], tuple[Block, ...]]:
    key = failed.user_id if scope == "user" else failed.ip
    until = event.occurred_at + timedelta(seconds=config.block_s)
    reason = REASON_USER_BURST if scope == "user" else REASON_IP_BURST
    users = sorted({f.user_id for f in count.in_window})
    evidence = {
        "scope": scope,
        "failed_attempts": str(len(count.in_window)),
        "threshold": str(threshold),
        "window_s": str(window_s),
        "first_failure_at": datetime.fromtimestamp(
            count.in_window[0].at_ms / 1000, event.occurred_at.tzinfo
        ).isoformat(),
        "blocked": f"{scope}:{key}",
        "blocked_until": until.isoformat(),
    }
    if scope == "ip":
        evidence["distinct_users"] = str(len(users))
    alert = suspicious_login(
        event,
        key,
        {
            "user_id": failed.user_id,
            "reason": reason,
            "ip": failed.ip,
            "device_id": failed.device_id,
            # The contract holds at most MAX_RELATED ids: the most recent ones.
            "related_event_ids": [uuid.UUID(f.event_id) for f in count.in_window][-MAX_RELATED:],
            "evidence": evidence,
        },
    )
    block = Block(kind=scope, id=key, until=until, reason=reason, event_id=alert.event_id)
    return (alert,), (block,)


def on_failure(
    event: AuthEvent, entry: Mapping[str, Any] | None, scope: Scope, config: SecuritySettings
) -> Decisions:
    """Count a failed login in its user's (or IP's) window; a new burst alerts and blocks."""
    failed = event.payload
    if not isinstance(failed, LoginFailed):
        return Decisions()
    threshold, window_s = (
        (config.user_failures, config.user_window_s)
        if scope == "user"
        else (config.ip_failures, config.ip_window_s)
    )
    window = FailureWindow.from_entry(entry)
    failure = Failure(_ms(event.occurred_at), str(event.event_id), failed.user_id)
    count = count_failure(window, failure, threshold, window_s * 1000)
    alerts: tuple[AuthEvent, ...] = ()
    blocks: tuple[Block, ...] = ()
    if count.burst:
        alerts, blocks = _burst_decisions(event, failed, scope, count, threshold, window_s, config)
    return Decisions(
        entry=window.to_entry() if count.changed else None,
        alerts=alerts,
        blocks=blocks,
        forward_by_ip=scope == "user",
    )


def on_user_event(
    event: AuthEvent, entry: Mapping[str, Any] | None, config: SecuritySettings
) -> Decisions:
    """An event of `auth.events` against its user's entry. Only failures count here: successful
    logins are the sessions fold's (`agents.sessions.state`), and alerts are our own output."""
    if event.event_type == "auth.login-failed":
        failures = on_failure(event, (entry or {}).get("window"), "user", config)
        if failures.entry is None:
            return failures
        return _with_entry(failures, dict(entry or {}) | {"window": failures.entry})
    return Decisions()


def _with_entry(decisions: Decisions, entry: Entry) -> Decisions:
    return Decisions(entry, decisions.alerts, decisions.blocks, decisions.forward_by_ip)


def on_ip_failure(
    event: AuthEvent, entry: Mapping[str, Any] | None, config: SecuritySettings
) -> Decisions:
    """A failed login re-keyed by IP, against that IP's entry."""
    return on_failure(event, entry, "ip", config)
