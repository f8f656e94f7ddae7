"""The router's per-user bookkeeping and its two clocks: quiet hours and throttles.

`RoutingState` is the router's value per user id (table `notification_routing`), next to the
user's `Contact`: the notification ids already routed (kept `dedupe_ttl_s`, so a redelivered
causing event is dropped), the send times per channel and category (a sliding window: the
windowed count of a throttle, exact at every instant, with no burst at a tumbling window's
edge), and the ids the user has waiting in the `deferred` table (so that `user.deleted` cancels
them without a scan). All of it is erased with the user.

Times are epoch seconds (floats), which the tables store as JSON.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from schemas.notifications import Channel
from schemas.users import QuietHours
from streams.settings import ThrottleLimit

DeferralKind = Literal["quiet-hours", "contact"]


class RoutingState(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # Notification id -> until when it is remembered (epoch s).
    seen: dict[str, float] = Field(default_factory=dict)
    # "<channel>:<category>" -> send times (epoch s), oldest first.
    sends: dict[str, list[float]] = Field(default_factory=dict)
    # Ids this user has in the deferred table.
    deferred: list[str] = Field(default_factory=list)
    # Notification id -> the address it was dispatched to, as long as the id is in `seen`: a
    # bounce report names the notification, and the address to suppress is the one it went to.
    sent_to: dict[str, str] = Field(default_factory=dict)

    def to_table(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def from_table(cls, value: dict[str, Any] | None) -> RoutingState:
        return cls() if value is None else cls.model_validate(value)

    def pruned(self, now_s: float, throttles: tuple[ThrottleLimit, ...]) -> RoutingState:
        """Without forgotten ids and send times outside every window that could count them."""
        sends: dict[str, list[float]] = {}
        for key, times in self.sends.items():
            channel, _, category = key.partition(":")
            limit = throttle_for(throttles, channel, category)
            if limit is not None:
                kept = [t for t in times if t > now_s - limit.window_s]
                if kept:
                    sends[key] = kept
        seen = {nid: until for nid, until in self.seen.items() if until > now_s}
        sent_to = {nid: address for nid, address in self.sent_to.items() if nid in seen}
        return RoutingState(seen=seen, sends=sends, deferred=list(self.deferred), sent_to=sent_to)


class Deferral(BaseModel):
    """A notification (or a whole request) waiting in the `deferred` table, keyed by its id."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    notification_id: str
    user_id: str
    kind: DeferralKind
    # When the periodic check releases it (epoch s): the end of the quiet hours, or the end of
    # the wait for a contact record.
    due_s: float
    # The original request record, base64: released by sending it again, unchanged.
    request: str
    channel: Channel | None = None

    def to_table(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def from_table(cls, value: dict[str, Any]) -> Deferral:
        return cls.model_validate(value)


def throttle_for(
    throttles: tuple[ThrottleLimit, ...], channel: str, category: str
) -> ThrottleLimit | None:
    """The limit for `channel` and `category`: its own if configured, else the channel's."""
    own = [t for t in throttles if t.channel == channel and t.category == category]
    general = [t for t in throttles if t.channel == channel and t.category is None]
    candidates = own or general
    return candidates[0] if candidates else None


def throttled(
    state: RoutingState,
    throttles: tuple[ThrottleLimit, ...],
    channel: str,
    category: str,
    now_s: float,
) -> ThrottleLimit | None:
    """The limit a send now would exceed, or None when it may go."""
    limit = throttle_for(throttles, channel, category)
    if limit is None:
        return None
    recent = [t for t in state.sends.get(f"{channel}:{category}", []) if t > now_s - limit.window_s]
    return limit if len(recent) >= limit.limit else None


def quiet_hours_end(
    quiet_hours: QuietHours | None, user_time_zone: str | None, now: datetime
) -> datetime | None:
    """When the quiet hours `now` falls in end (aware), or None when `now` is not in them.

    The window is in the quiet hours' own time zone, else the user's, else UTC; `start > end`
    spans midnight (22:00-07:00). The end is the next wall-clock `end` after `now` there.
    """
    if quiet_hours is None:
        return None
    zone = ZoneInfo(quiet_hours.time_zone or user_time_zone or "UTC")
    local = now.astimezone(zone)
    clock = local.time().replace(tzinfo=None)
    start, end = quiet_hours.start, quiet_hours.end
    inside = start <= clock < end if start < end else (clock >= start or clock < end)
    if not inside:
        return None
    end_at = datetime.combine(local.date(), end, tzinfo=zone)
    if end_at <= local:
        end_at = datetime.combine(local.date() + timedelta(days=1), end, tzinfo=zone)
    return end_at
