"""The router's one entry per user in `notification_routing`: the user's routing state (the
`RoutingState` fields) and, under `contact`, the user's contact record.

Both change in the same batch whenever a user event routes a notification (a `user.created`
sets the contact and records the welcome it routes), and each table write is a changelog record
produced, read back by the standby and stored twice. Kept in one value, a user's batch writes
one record where two tables wrote two.

Earlier versions kept contacts in a table of their own, `contacts`. It is still read, for a
user whose entry holds no contact, and a user's key there is deleted with the first write of
the user's entry, which takes the contact over: the old table empties as users are written,
and nothing is lost or read twice meanwhile. An entry without a `contact` is read as before
(an earlier version's routing state, or a user with no contact yet).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol

CONTACT_FIELD = "contact"

Value = dict[str, Any]


class Overlay(Protocol):
    """A table seen through a batch's pending writes (`route_batch._Overlay`)."""

    def get(self, key: bytes) -> Value | None: ...

    def put(self, key: bytes, value: Value | None, item: Any) -> None: ...

    def flush(self, scope: Callable[[Any], AbstractContextManager[None]]) -> None: ...


class Recipients:
    """Each user's contact and routing state, read and written as if they were two tables."""

    def __init__(self, entries: Overlay, legacy_contacts: Overlay) -> None:
        """`entries`: `notification_routing`; `legacy_contacts`: the `contacts` table of
        earlier versions, each through the batch's overlay."""
        self._entries = entries
        self._legacy = legacy_contacts

    def contact(self, key: bytes) -> Value | None:
        entry = self._entries.get(key)
        if entry is not None and CONTACT_FIELD in entry:
            contact: Value | None = entry[CONTACT_FIELD]
            return contact
        return self._legacy.get(key)

    def routing(self, key: bytes) -> Value | None:
        entry = self._entries.get(key)
        if entry is None or CONTACT_FIELD not in entry:
            return entry
        routing = {name: value for name, value in entry.items() if name != CONTACT_FIELD}
        return routing or None

    def put_contact(self, key: bytes, contact: Value | None, item: Any) -> None:
        self._put(key, self.routing(key), contact, item)

    def put_routing(self, key: bytes, routing: Value | None, item: Any) -> None:
        self._put(key, routing, self.contact(key), item)

    def _put(self, key: bytes, routing: Value | None, contact: Value | None, item: Any) -> None:
        stored = self._entries.get(key)
        holds_contact = stored is not None and CONTACT_FIELD in stored
        if routing is None and contact is None:
            self._entries.put(key, None, item)
        else:
            entry = dict(routing or {})
            if contact is not None:
                entry[CONTACT_FIELD] = contact
            self._entries.put(key, entry, item)
        # What the old table holds for the user goes with the write that takes it over (it was
        # read for it: `contact`), or with the user's erasure, which must not leave a copy.
        # Once an entry holds the contact, the old table is not looked at for the user again.
        if (not holds_contact or contact is None) and self._legacy.get(key) is not None:
            self._legacy.put(key, None, item)

    def flush(self, scope: Callable[[Any], AbstractContextManager[None]]) -> None:
        self._entries.flush(scope)
        self._legacy.flush(scope)
