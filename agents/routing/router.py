"""Routing one notification request: which channels, to whom, now, later, or not at all. Pure.

Given a request, the user's contact record, the user's routing state and the time, `route`
decides for each channel the rule (or the request) calls for: dispatch it now (rendered), defer
it (quiet hours), or suppress it (opted out, throttled, no contact point, an address that
bounced or drew a complaint: `agents.routing.suppressions`), with the reason on a
status event, so that "why did I not get it" always has an answer. Critical notifications skip
preferences, quiet hours and throttles. Nothing here touches Kafka or a table: the caller applies
the returned state and deferrals and publishes the events.

A request may arrive before its user's first `users.events` record (two topics, no order between
them): it waits in the deferred table, released the moment a contact record appears, or given
up with reason no-contact after `contact_wait_s`. A released record carries the id it releases,
so that a quiet-hours release resumes one channel, not the whole request.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from agents.routing.contacts import Contact
from agents.routing.policy import (
    Deferral,
    DeferralKind,
    RoutingState,
    quiet_hours_end,
    throttled,
)
from agents.routing.rendering import TemplateRenderer
from agents.routing.rules import (
    NOTIFICATION_IDS,
    RULES,
    ChannelChoice,
    NotificationRule,
    channel_notification_id,
    rule_named,
)
from agents.routing.suppressions import UserSuppressions
from schemas.notifications import (
    Channel,
    NotificationDispatch,
    NotificationRequested,
    NotificationRequestEvent,
    NotificationState,
    NotificationStatusChanged,
)
from streams.settings import NotificationSettings

ALL_CHANNELS: tuple[Channel, ...] = ("email", "push", "sms", "whatsapp")
# Where a critical notification goes instead when its address is suppressed, in this order.
CRITICAL_FALLBACK: tuple[Channel, ...] = ("sms", "push")
# The "channel" of the notification id of a copy to the user's previous email address.
PREVIOUS_EMAIL = "email-previous"


@dataclass(frozen=True, slots=True)
class StatusChange:
    payload: NotificationStatusChanged
    at: datetime


@dataclass(slots=True)
class Routing:
    """What routing one request (or one user event) decided."""

    state: RoutingState
    dispatches: list[NotificationDispatch] = field(default_factory=list)
    statuses: list[StatusChange] = field(default_factory=list)
    defer: list[Deferral] = field(default_factory=list)
    # Ids to take out of the deferred table.
    undefer: list[str] = field(default_factory=list)
    # Deferred requests to send again now (their contact record appeared): (id, record bytes).
    release: list[Deferral] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Planned:
    """One notification of a request: a channel, its id, where to, or why it cannot be sent."""

    channel: Channel
    notification_id: str
    recipient: str | None
    blocked: str | None = None  # "opted-out" or "no-contact"


def channel_id(request: NotificationRequested, rule: NotificationRule | None, channel: str) -> str:
    """Deterministic per channel: from (causing event, rule, channel) when the request names
    them, else from the request's own id (a request for one channel keeps its id as is)."""
    if rule is not None and request.caused_by_event_id is not None:
        return channel_notification_id(request.caused_by_event_id, rule.name, channel)
    if request.channel == channel:
        return request.notification_id
    return NOTIFICATION_IDS.text(f"{request.notification_id}/{channel}")


def _choices(
    request: NotificationRequested, rule: NotificationRule | None, contact: Contact
) -> tuple[ChannelChoice, ...]:
    if rule is not None:
        return rule.channels
    if request.channel is not None:
        return (ChannelChoice((request.channel,)),)
    if request.category == "critical":
        reachable = [c for c in ALL_CHANNELS if contact.recipient(c)]
        return tuple(ChannelChoice((c,)) for c in reachable) or (ChannelChoice(("email",)),)
    wanted = [c for c in ALL_CHANNELS if contact.switched_on(request.category, c)]
    return tuple(ChannelChoice((c,)) for c in wanted) or (ChannelChoice(("email",)),)


def plan(
    request: NotificationRequested, rule: NotificationRule | None, contact: Contact
) -> list[Planned]:
    """The notifications of `request` for this contact: at most one per channel choice, plus,
    for a rule that asks for it, a copy to the email address the user had before the event."""
    critical = request.category == "critical"
    planned: list[Planned] = []
    for choice in _choices(request, rule, contact):
        reasons: list[str] = []
        for channel in choice.alternatives:
            recipient = contact.recipient(channel)
            switch = contact.switched_on(request.category, channel)
            if recipient and (
                switch is True or (not choice.opt_in and (critical or switch is None))
            ):
                planned.append(Planned(channel, channel_id(request, rule, channel), recipient))
                break
            reasons.append("opted-out" if switch is False and not critical else "no-contact")
        else:
            if not choice.opt_in:
                first = choice.alternatives[0]
                reason = "opted-out" if "opted-out" in reasons else "no-contact"
                planned.append(Planned(first, channel_id(request, rule, first), None, reason))
    previous = request.variables.get("previous_email")
    wanted = rule is not None and rule.to_previous_email and previous != contact.email
    if wanted and previous and contact.switched_on(request.category, "email") is not False:
        planned.append(Planned("email", channel_id(request, rule, PREVIOUS_EMAIL), previous))
    return planned


def with_fallbacks(
    request: NotificationRequested,
    rule: NotificationRule | None,
    contact: Contact,
    planned: list[Planned],
    suppressions: UserSuppressions,
) -> list[Planned]:
    """`planned`, plus, for a critical notification that would reach the user nowhere because
    its address is suppressed, the first channel of `CRITICAL_FALLBACK` the user can be reached
    on at an address not suppressed (the suppressed one is still recorded as suppressed)."""
    if request.category != "critical":
        return planned
    held = [p for p in planned if suppressions.held(p.channel, p.recipient) is not None]
    reaches = [p for p in planned if p.recipient and p.blocked is None and p not in held]
    if not held or reaches:
        return planned
    for channel in CRITICAL_FALLBACK:
        recipient = contact.recipient(channel)
        if recipient is not None and suppressions.held(channel, recipient) is None:
            return [*planned, Planned(channel, channel_id(request, rule, channel), recipient)]
    return planned


@dataclass(frozen=True, slots=True)
class Router:
    """The routing policy (settings, rules, templates) applied to one request at a time."""

    settings: NotificationSettings
    renderer: TemplateRenderer
    rules: tuple[NotificationRule, ...] = RULES

    def route(
        self,
        event: NotificationRequestEvent,
        raw: Callable[[], bytes],
        *,
        contact: Contact | None,
        state: RoutingState,
        deferred: Mapping[str, Deferral],
        release: str | None,
        now: datetime,
        suppressions: UserSuppressions | None = None,
    ) -> Routing:
        """`raw` gives the request's record value, asked for only when a deferral keeps it (a
        request made from a users event is encoded then, not for every welcome); `deferred`
        holds this user's entries of the deferred table (by id); `release` is the id a released
        record names, None for a request arriving the first time; `suppressions` the user's
        suppressed addresses."""
        now_s = now.timestamp()
        request = event.payload
        held = suppressions or UserSuppressions()
        routing = Routing(state=state.pruned(now_s, self.settings.throttles))
        rule = rule_named(request.rule, self.rules) if request.rule else None
        if contact is None:
            self._await_contact(routing, event, raw, rule, deferred, release, now)
            return routing
        if request.notification_id in deferred:  # was waiting for the contact record
            self._undefer(routing, request.notification_id)
        planned = with_fallbacks(request, rule, contact, plan(request, rule, contact), held)
        if release is not None and release != request.notification_id:
            planned = [p for p in planned if p.notification_id == release]
            if not planned and release in deferred:  # the user's channels changed meanwhile
                self._undefer(routing, release)
                self._status(
                    routing,
                    event,
                    release,
                    deferred[release].channel,
                    "cancelled",
                    "preferences-changed",
                    now,
                )
        for item in planned:
            self._route_one(routing, event, raw, rule, contact, item, deferred, release, now, held)
        return routing

    def _route_one(
        self,
        routing: Routing,
        event: NotificationRequestEvent,
        raw: Callable[[], bytes],
        rule: NotificationRule | None,
        contact: Contact,
        item: Planned,
        deferred: Mapping[str, Deferral],
        release: str | None,
        now: datetime,
        suppressions: UserSuppressions,
    ) -> None:
        request, nid, now_s = event.payload, item.notification_id, now.timestamp()
        if nid in routing.state.seen:
            return  # a redelivered cause: routed before
        if nid in deferred:
            if release != nid:
                return  # deferred already; its release will route it
            self._undefer(routing, nid)
        critical = request.category == "critical"
        if item.blocked is not None:
            self._finish(routing, nid, now_s)
            self._status(routing, event, nid, item.channel, "suppressed", item.blocked, now)
            return
        held = suppressions.held(item.channel, item.recipient)
        if held is not None:  # bounced or complained: not even a critical one goes there
            self._finish(routing, nid, now_s)
            reason = held.status_reason()
            self._status(routing, event, nid, item.channel, "suppressed", reason, now)
            return
        quiet_until = (
            None if critical else quiet_hours_end(contact.quiet_hours, contact.time_zone, now)
        )
        if quiet_until is not None:
            self._defer(routing, event, raw, nid, item.channel, "quiet-hours", quiet_until)
            until = quiet_until.isoformat(timespec="minutes")
            self._status(
                routing, event, nid, item.channel, "deferred", f"quiet-hours until {until}", now
            )
            return
        limit = (
            None
            if critical
            else throttled(
                routing.state, self.settings.throttles, item.channel, request.category, now_s
            )
        )
        if limit is not None:
            self._finish(routing, nid, now_s)
            reason = (
                f"throttled: at most {limit.limit} {item.channel} {request.category} "
                f"notifications per {limit.window_s} s"
            )
            self._status(routing, event, nid, item.channel, "suppressed", reason, now)
            return
        self._dispatch(routing, event, rule, contact, item, now)

    def _dispatch(
        self,
        routing: Routing,
        event: NotificationRequestEvent,
        rule: NotificationRule | None,
        contact: Contact,
        item: Planned,
        now: datetime,
    ) -> None:
        request, now_s = event.payload, now.timestamp()
        assert item.recipient is not None
        message = self.renderer.render(
            request.template, request.locale or contact.locale, item.channel, request.variables
        )
        routing.dispatches.append(
            NotificationDispatch(
                notification_id=item.notification_id,
                user_id=request.user_id,
                category=request.category,
                channel=item.channel,
                recipient=item.recipient,
                locale=message.locale,
                subject=message.subject,
                body=message.body,
                template=request.template,
                rule=request.rule if rule is None else rule.name,
                attempt=1,
                caused_at=request.caused_at,
                critical=request.category == "critical",
            )
        )
        self._finish(routing, item.notification_id, now_s)
        sent_to = {**routing.state.sent_to, item.notification_id: item.recipient}
        routing.state = routing.state.model_copy(update={"sent_to": sent_to})
        if request.category != "critical":
            key = f"{item.channel}:{request.category}"
            sends = {**routing.state.sends, key: [*routing.state.sends.get(key, []), now_s]}
            routing.state = routing.state.model_copy(update={"sends": sends})
        self._status(routing, event, item.notification_id, item.channel, "queued", None, now)

    def _await_contact(
        self,
        routing: Routing,
        event: NotificationRequestEvent,
        raw: Callable[[], bytes],
        rule: NotificationRule | None,
        deferred: Mapping[str, Deferral],
        release: str | None,
        now: datetime,
    ) -> None:
        request = event.payload
        rid = request.notification_id
        waiting = deferred.get(rid)
        if release is not None and release != rid:
            return  # a stale quiet-hours release of a user deleted since
        if waiting is None:
            if release is None:
                due = datetime.fromtimestamp(now.timestamp() + self.settings.contact_wait_s, UTC)
                self._defer(routing, event, raw, rid, None, "contact", due)
            return  # else a stale release: handled already
        if release != rid and waiting.due_s > now.timestamp():
            return  # a duplicate while it waits
        self._undefer(routing, rid)
        # Waited long enough: nobody to send it to.
        for choice in rule.channels if rule else (ChannelChoice((request.channel or "email",)),):
            if not choice.opt_in:
                first = choice.alternatives[0]
                nid = channel_id(request, rule, first)
                if nid not in routing.state.seen:
                    self._finish(routing, nid, now.timestamp())
                    self._status(routing, event, nid, first, "suppressed", "no-contact", now)

    def _defer(
        self,
        routing: Routing,
        event: NotificationRequestEvent,
        raw: Callable[[], bytes],
        nid: str,
        channel: Channel | None,
        kind: DeferralKind,
        due: datetime,
    ) -> None:
        routing.defer.append(
            Deferral(
                notification_id=nid,
                user_id=event.payload.user_id,
                kind=kind,
                due_s=due.timestamp(),
                request=base64.b64encode(raw()).decode(),
                channel=channel,
            )
        )
        if nid not in routing.state.deferred:
            deferred_ids = [*routing.state.deferred, nid]
            routing.state = routing.state.model_copy(update={"deferred": deferred_ids})

    def _undefer(self, routing: Routing, nid: str) -> None:
        routing.undefer.append(nid)
        remaining = [d for d in routing.state.deferred if d != nid]
        routing.state = routing.state.model_copy(update={"deferred": remaining})

    def _finish(self, routing: Routing, nid: str, now_s: float) -> None:
        seen = {**routing.state.seen, nid: now_s + self.settings.dedupe_ttl_s}
        routing.state = routing.state.model_copy(update={"seen": seen})

    def _status(
        self,
        routing: Routing,
        event: NotificationRequestEvent,
        nid: str,
        channel: Channel | None,
        state: NotificationState,
        reason: str | None,
        now: datetime,
    ) -> None:
        request = event.payload
        routing.statuses.append(
            StatusChange(
                NotificationStatusChanged(
                    notification_id=nid,
                    user_id=request.user_id,
                    state=state,
                    channel=channel,
                    reason=reason,
                    category=request.category,
                    caused_at=request.caused_at,
                    template=request.template,
                ),
                now,
            )
        )


def erase_user(
    user_id: str, state: RoutingState, deferred: Mapping[str, Deferral], now: datetime
) -> list[StatusChange]:
    """`user.deleted`: every deferred notification of the user is cancelled (the caller drops
    the contact, the routing state and the deferred entries)."""
    changes = []
    for nid in state.deferred:
        entry = deferred.get(nid)
        changes.append(
            StatusChange(
                NotificationStatusChanged(
                    notification_id=nid,
                    user_id=user_id,
                    state="cancelled",
                    channel=entry.channel if entry else None,
                    reason="user-deleted",
                ),
                now,
            )
        )
    return changes
