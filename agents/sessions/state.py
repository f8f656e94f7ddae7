"""How `auth.events` fold into a user's sessions and devices. Pure functions: no Faust, no I/O.

One entry per user (the `sessions` table, keyed by user id like the topic), holding the user's
sessions, known devices and countries, and the ids of the latest events applied:

* `auth.login-succeeded` opens a session (its `session_id`, or one named after the event when
  upstream sends none) or refreshes it while it is active; a session that ended and logs in
  again later is a new session under the same id. It makes its device known (first and last
  seen, last IP, login count) and its country, when the event carries one.
* `auth.logout` ends its session (or, without a session id, every active session of its
  device); `auth.session-revoked` ends its session; `auth.password-changed` ends every active
  session of the user that started before the change, but the one it was made from.

The new-device rule reads the same entry (one source of truth): a login from a device never
seen, or from a country never seen, for a user who has known ones is an `auth.suspicious-login`
(reasons `new-device`, `new-country`). Events arrive at least once: an event whose id the entry
holds is not applied twice, and if it raised alerts they are raised again with the same ids.
Ends apply by event time: an end older than a session's start leaves it alone, and a login
older than a session's end does not reopen it.

Devices carried over: before this fold held the new-device rule, the security rule kept each
user's known device ids in its own entry (`security-users`, under "devices"). A user who has no
entry here yet starts from those ids (`carried_over`), once: a carried device is known to the
alert (its first login here raises none), and a device new to a user with only carried ones
alerts. The rows stay a function of `auth.events` alone (`flagged` says whether the user had
devices known from the log), so a replay, which reads nothing but the log, rebuilds them the
same; only the alerts, which a replay never repeats, weigh the carried ids.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agents.security.signals import REASON_NEW_DEVICE, suspicious_login
from schemas.auth import (
    AuthEvent,
    LoggedOut,
    LoginSucceeded,
    PasswordChanged,
    SessionRevoked,
    SuspiciousLogin,
)
from schemas.sessions import DeviceView, EndReason, SessionView

REASON_NEW_COUNTRY = "new-country"
# The evidence entry saying what was known when the alert was raised.
KNOWN = "known"
# Event ids remembered per user to recognise a replay; a batch replays far fewer.
RECENT_EVENTS = 64
# Ended sessions kept in the table (PostgreSQL keeps them all): enough to order late events.
ENDED_KEPT = 20
COUNTRIES_KEPT = 32

Entry = dict[str, Any]


@dataclass(slots=True)
class UserSessions:
    """A user's entry, decoded. `revision` counts the changes: PostgreSQL rows carry it."""

    user_id: str
    revision: int = 0
    sessions: dict[str, SessionView] = field(default_factory=dict)
    devices: dict[str, DeviceView] = field(default_factory=dict)
    countries: list[str] = field(default_factory=list)
    # [event id, {alert reason: its evidence of what was known}], oldest first.
    recent: list[list[Any]] = field(default_factory=list)
    # Device ids the old security rule knew and this fold has not seen yet, most recent first.
    carried: list[str] = field(default_factory=list)

    @classmethod
    def from_entry(cls, user_id: str, entry: Mapping[str, Any] | None) -> UserSessions:
        if not entry:
            return cls(user_id)
        return cls(
            user_id=user_id,
            revision=int(entry["revision"]),
            sessions={
                key: SessionView.model_validate(value) for key, value in entry["sessions"].items()
            },
            devices={
                key: DeviceView.model_validate(value) for key, value in entry["devices"].items()
            },
            countries=list(entry.get("countries", [])),
            recent=[list(item) for item in entry.get("recent", [])],
            carried=list(entry.get("carried", [])),
        )

    def to_entry(self) -> Entry:
        entry = {
            "revision": self.revision,
            "sessions": {k: v.model_dump(mode="json") for k, v in self.sessions.items()},
            "devices": {k: v.model_dump(mode="json") for k, v in self.devices.items()},
            "countries": self.countries,
            "recent": self.recent,
        }
        return entry | {"carried": self.carried} if self.carried else entry


def carried_over(user_id: str, legacy: Mapping[str, Any] | None, max_devices: int) -> UserSessions:
    """A user new to this table, knowing the devices of the old security rule's entry
    (`{"devices": [[device id, first event id, flagged], ...]}`, most recently seen first).
    Anything else there, or a malformed item, is left out: that entry is old data."""
    items = (legacy or {}).get("devices")
    carried: list[str] = []
    for item in items if isinstance(items, list) else []:
        device_id = item[0] if isinstance(item, list) and item else None
        if isinstance(device_id, str) and device_id and device_id not in carried:
            carried.append(device_id)
    return UserSessions(user_id, carried=carried[:max_devices])


@dataclass(frozen=True, slots=True)
class Applied:
    """What one event changed: the rows to write (already at the new revision) and alerts."""

    sessions: tuple[SessionView, ...] = ()
    devices: tuple[DeviceView, ...] = ()
    alerts: tuple[AuthEvent, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.sessions or self.devices)


def session_id_of(event: AuthEvent, login: LoginSucceeded) -> str:
    return login.session_id or f"login-{event.event_id}"


def apply(state: UserSessions, event: AuthEvent, max_devices: int) -> Applied:
    """Fold `event` into `state` (mutated); see the module docstring."""
    seen = next((item for item in state.recent if item[0] == str(event.event_id)), None)
    if seen is not None:
        return _replayed(state, event, seen[1])
    payload = event.payload
    revision = state.revision + 1
    if isinstance(payload, LoginSucceeded):
        applied = _login(state, event, payload, revision, max_devices)
    elif isinstance(payload, LoggedOut):
        applied = _logout(state, event, payload, revision)
    elif isinstance(payload, SessionRevoked):
        applied = _end(state, event, revision, "revoked", {payload.session_id})
    elif isinstance(payload, PasswordChanged):
        keep = payload.session_id
        ids = {sid for sid in state.sessions if sid != keep}
        applied = _end(state, event, revision, "password-changed", ids)
    else:
        return Applied()
    raised = {
        alert.payload.reason: alert.payload.evidence.get(KNOWN, "")
        for alert in applied.alerts
        if isinstance(alert.payload, SuspiciousLogin)
    }
    state.recent.append([str(event.event_id), raised])
    del state.recent[:-RECENT_EVENTS]
    if applied.changed:
        state.revision = revision
        _forget_old_sessions(state)
    return applied


def _login(
    state: UserSessions, event: AuthEvent, login: LoginSucceeded, revision: int, max_devices: int
) -> Applied:
    at = event.occurred_at
    sid = session_id_of(event, login)
    held = state.sessions.get(sid)
    session: SessionView | None
    if held is not None and held.active:
        newer = at >= held.last_seen_at
        session = held.model_copy(
            update={
                "last_seen_at": max(at, held.last_seen_at),
                "started_at": min(at, held.started_at),
                "logins": held.logins + 1,
                "revision": revision,
            }
            | (_where(login) if newer else {})
        )
    elif held is not None and held.ended_at is not None and at <= held.ended_at:
        session = None  # a login from before the session ended: it reopens nothing
    else:
        session = SessionView(
            user_id=state.user_id,
            session_id=sid,
            started_at=at,
            last_seen_at=at,
            opened_by=event.event_id,
            revision=revision,
            **_where(login),
        )
    if session is not None:
        state.sessions[sid] = session
    device, alerts = _device(state, event, login, revision, max_devices)
    alerts += _country(state, event, login)
    return Applied(
        sessions=(session,) if session is not None else (),
        devices=(device,) if device is not None else (),
        alerts=alerts,
    )


def _where(login: LoginSucceeded) -> dict[str, Any]:
    return {
        "device_id": login.device_id,
        "ip": login.ip,
        "user_agent": login.user_agent,
        "country": login.country,
    }


def _device(
    state: UserSessions, event: AuthEvent, login: LoginSucceeded, revision: int, max_devices: int
) -> tuple[DeviceView | None, tuple[AuthEvent, ...]]:
    if login.device_id is None:
        return None, ()
    at = event.occurred_at
    held = state.devices.get(login.device_id)
    if held is not None:
        newer = at >= held.last_seen_at
        where = {"last_ip": login.ip, "user_agent": login.user_agent, "country": login.country}
        device = held.model_copy(
            update={
                "first_seen_at": min(at, held.first_seen_at),
                "last_seen_at": max(at, held.last_seen_at),
                "login_count": held.login_count + 1,
                "revision": revision,
            }
            | (where if newer else {})
        )
        state.devices[login.device_id] = device
        return device, ()
    # The row says what the log knew (a replay rebuilds it the same); the alert also weighs the
    # devices carried over from the old rule.
    was_carried = login.device_id in state.carried
    if was_carried:
        state.carried.remove(login.device_id)
    flagged = bool(state.devices)
    alerted = not was_carried and (flagged or bool(state.carried))
    device = DeviceView(
        user_id=state.user_id,
        device_id=login.device_id,
        first_seen_at=at,
        last_seen_at=at,
        last_ip=login.ip,
        user_agent=login.user_agent,
        country=login.country,
        first_event_id=event.event_id,
        flagged=flagged,
        revision=revision,
    )
    state.devices[login.device_id] = device
    if len(state.devices) > max_devices:
        oldest = min(state.devices.values(), key=lambda d: (d.last_seen_at, d.device_id))
        del state.devices[oldest.device_id]
    # The carried devices are older than any seen here: the first forgotten.
    del state.carried[max(max_devices - len(state.devices), 0) :]
    known = str(len(state.devices) - 1 + len(state.carried))
    return device, (new_device_alert(event, login, known),) if alerted else ()


def _country(state: UserSessions, event: AuthEvent, login: LoginSucceeded) -> tuple[AuthEvent, ...]:
    country = login.country
    if country is None or country in state.countries:
        return ()
    known = list(state.countries)
    state.countries.append(country)
    del state.countries[:-COUNTRIES_KEPT]
    return (new_country_alert(event, login, ",".join(known)),) if known else ()


def _logout(state: UserSessions, event: AuthEvent, logout: LoggedOut, revision: int) -> Applied:
    if logout.session_id is not None:
        ids = {logout.session_id}
    elif logout.device_id is not None:
        ids = {sid for sid, s in state.sessions.items() if s.device_id == logout.device_id}
    else:
        ids = set()
    return _end(state, event, revision, "logout", ids)


def _end(
    state: UserSessions, event: AuthEvent, revision: int, reason: EndReason, ids: set[str]
) -> Applied:
    """End the active sessions among `ids` that started before the event."""
    at = event.occurred_at
    ended: list[SessionView] = []
    for sid in sorted(ids):
        held = state.sessions.get(sid)
        if held is None or not held.active or held.started_at > at:
            continue
        session = held.model_copy(
            update={"ended_at": at, "end_reason": reason, "revision": revision}
        )
        state.sessions[sid] = session
        ended.append(session)
    return Applied(sessions=tuple(ended))


def _forget_old_sessions(state: UserSessions) -> None:
    ended = [s for s in state.sessions.values() if not s.active]
    ended.sort(key=lambda s: (s.ended_at or s.last_seen_at, s.session_id), reverse=True)
    for session in ended[ENDED_KEPT:]:
        del state.sessions[session.session_id]


def _replayed(state: UserSessions, event: AuthEvent, raised: Mapping[str, str]) -> Applied:
    """An event applied before: nothing changes, but the rows it touched are offered again as
    they are now (after a crash between the table's update and the rows' write, only this
    repairs PostgreSQL; the store keeps the newer of two writes) and its alerts raised again."""
    payload = event.payload
    ids: set[str] = set()
    device = None
    if isinstance(payload, LoginSucceeded):
        ids = {session_id_of(event, payload)}
        device = state.devices.get(payload.device_id) if payload.device_id else None
    elif isinstance(payload, LoggedOut) and payload.session_id is not None:
        ids = {payload.session_id}
    elif isinstance(payload, LoggedOut) and payload.device_id is not None:
        ids = {sid for sid, s in state.sessions.items() if s.device_id == payload.device_id}
    elif isinstance(payload, SessionRevoked):
        ids = {payload.session_id}
    elif isinstance(payload, PasswordChanged):
        ids = set(state.sessions)
    return Applied(
        sessions=tuple(state.sessions[sid] for sid in sorted(ids) if sid in state.sessions),
        devices=(device,) if device is not None else (),
        alerts=_replayed_alerts(event, raised),
    )


def _replayed_alerts(event: AuthEvent, raised: Mapping[str, str]) -> tuple[AuthEvent, ...]:
    """The alerts `event` raised when it was applied, built again: same ids, same bytes."""
    login = event.payload
    if not isinstance(login, LoginSucceeded):
        return ()
    alerts: list[AuthEvent] = []
    if REASON_NEW_DEVICE in raised:
        alerts.append(new_device_alert(event, login, raised[REASON_NEW_DEVICE]))
    if REASON_NEW_COUNTRY in raised:
        alerts.append(new_country_alert(event, login, raised[REASON_NEW_COUNTRY]))
    return tuple(alerts)


def new_device_alert(event: AuthEvent, login: LoginSucceeded, known: str) -> AuthEvent:
    """`known`: how many devices the user had (the evidence `known_devices`)."""
    evidence = {"known_devices": known, KNOWN: known}
    if login.user_agent:
        evidence["user_agent"] = login.user_agent[:1024]
    return suspicious_login(
        event,
        login.user_id,
        {
            "user_id": login.user_id,
            "reason": REASON_NEW_DEVICE,
            "ip": login.ip,
            "device_id": login.device_id,
            "related_event_ids": [event.event_id],
            "evidence": evidence,
        },
    )


def new_country_alert(event: AuthEvent, login: LoginSucceeded, known: str) -> AuthEvent:
    """`known`: the user's known countries, comma-separated."""
    return suspicious_login(
        event,
        login.user_id,
        {
            "user_id": login.user_id,
            "reason": REASON_NEW_COUNTRY,
            "ip": login.ip,
            "device_id": login.device_id,
            "related_event_ids": [event.event_id],
            "evidence": {"country": str(login.country), "known_countries": known, KNOWN: known},
        },
    )
