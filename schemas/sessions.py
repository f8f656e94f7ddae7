"""Sessions and devices of a user, as folded from `auth.events`: the rows the worker materializes
into PostgreSQL and the API serves, and the revoke command the API accepts."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from schemas.orders import Identifier

# Why a session ended.
EndReason = Literal["logout", "revoked", "password-changed"]


class SessionView(BaseModel):
    """One session of a user. A session id that logs in again after it ended opens a new
    session under the same id: `started_at` and `opened_by` are then the new login's."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    user_id: str
    session_id: str
    device_id: str | None = None
    ip: str
    user_agent: str | None = None
    country: str | None = None
    started_at: datetime
    last_seen_at: datetime
    ended_at: datetime | None = None
    end_reason: EndReason | None = None
    # The login event that opened it, and how many logins (the first included) refreshed it.
    opened_by: UUID
    logins: int = 1
    # The user's entry revision that last changed this row: a row is never replaced by an
    # older one (two workers racing through a rebalance, a replay).
    revision: int = 0

    @property
    def active(self) -> bool:
        return self.ended_at is None


class DeviceView(BaseModel):
    """A device a user logged in from: when first and last, from where last, how often."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    user_id: str
    device_id: str
    first_seen_at: datetime
    last_seen_at: datetime
    last_ip: str
    user_agent: str | None = None
    country: str | None = None
    login_count: int = 1
    # The login that first showed it, and whether the user then had devices known from
    # `auth.events` (a new-device alert, unless the old security rule knew the device: the
    # alert weighs those too, the row only the log, so that a replay rebuilds it the same).
    first_event_id: UUID
    flagged: bool = False
    revision: int = 0


class RevokeSessions(BaseModel):
    """`POST /v1/users/{id}/sessions/revoke`: `session_id`, or `all` (but `except_session_id`).
    Which combinations are allowed is checked by the API, naming the field at fault."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    session_id: Identifier | None = None
    all: Annotated[bool, Field(strict=True)] = False
    except_session_id: Identifier | None = None
    reason: Annotated[str, Field(min_length=1, max_length=256)] | None = None
