"""Authentication events: the `auth.events` contract, keyed by user id like `users.events`.

Upstream identity platforms send six of the seven types. `auth.suspicious-login` is the verdict of
our own security agent about those events, so the webhook refuses it: an outside caller must not
be able to raise (or forge) an alarm about a user.
"""

from __future__ import annotations

from ipaddress import IPv6Address, ip_address
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    Field,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
)

from schemas.envelope import Contract, CorrelationId, Envelope, Text, select_payload
from schemas.orders import Identifier

AUTH_EVENT_TYPES: tuple[str, ...] = (
    "auth.login-succeeded",
    "auth.login-failed",
    "auth.logout",
    "auth.password-reset-requested",
    "auth.password-changed",
    "auth.session-revoked",
    "auth.suspicious-login",
)
AuthEventType = Literal[
    "auth.login-succeeded",
    "auth.login-failed",
    "auth.logout",
    "auth.password-reset-requested",
    "auth.password-changed",
    "auth.session-revoked",
    "auth.suspicious-login",
]
AuthWebhookType = Literal[
    "auth.login-succeeded",
    "auth.login-failed",
    "auth.logout",
    "auth.password-reset-requested",
    "auth.password-changed",
    "auth.session-revoked",
]


def _normalized_ip(text: str) -> str:
    # One spelling per address, so that counting by IP counts addresses, not spellings.
    address = ip_address(text)
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


IpAddress = Annotated[str, Field(max_length=45), AfterValidator(_normalized_ip)]
UserAgent = Annotated[str, Field(min_length=1, max_length=512)]
# ISO 3166-1 alpha-2, as upstream geolocation reports it.
CountryCode = Annotated[str, Field(pattern=r"^[A-Z]{2}$")]


class LoginSucceeded(Contract):
    user_id: Identifier
    ip: IpAddress
    user_agent: UserAgent | None = None
    device_id: Identifier | None = None
    session_id: Identifier | None = None
    country: CountryCode | None = None


class LoginFailed(Contract):
    user_id: Identifier
    ip: IpAddress
    user_agent: UserAgent | None = None
    device_id: Identifier | None = None
    # Upstream's own code, such as "bad_password", "unknown_mfa_code" or "locked".
    reason: Text | None = None


class LoggedOut(Contract):
    user_id: Identifier
    session_id: Identifier | None = None
    device_id: Identifier | None = None


class PasswordResetRequested(Contract):
    user_id: Identifier
    ip: IpAddress | None = None
    user_agent: UserAgent | None = None


class PasswordChanged(Contract):
    user_id: Identifier
    ip: IpAddress | None = None
    user_agent: UserAgent | None = None
    # True when the change completed a reset rather than a signed-in change.
    via_reset: Annotated[bool, Field(strict=True)] = False
    # The session the change was made from: every other session of the user ends.
    session_id: Identifier | None = None


class SessionRevoked(Contract):
    user_id: Identifier
    session_id: Identifier
    reason: Text | None = None


class SuspiciousLogin(Contract):
    """A security agent's verdict, with the evidence an analyst needs to check it."""

    user_id: Identifier
    # A rule name, such as "brute-force", "new-device" or "impossible-travel".
    reason: Text
    ip: IpAddress | None = None
    device_id: Identifier | None = None
    # The events the verdict was drawn from, so that it can be audited.
    related_event_ids: Annotated[list[UUID], Field(max_length=1000)] = Field(default_factory=list)
    # Rule-specific facts, such as {"failed_attempts": "12", "window_s": "300"}.
    evidence: Annotated[dict[str, Annotated[str, Field(max_length=1024)]], Field(max_length=64)] = (
        Field(default_factory=dict)
    )


AuthPayload = (
    LoginSucceeded
    | LoginFailed
    | LoggedOut
    | PasswordResetRequested
    | PasswordChanged
    | SessionRevoked
    | SuspiciousLogin
)

AUTH_PAYLOADS: dict[str, type[AuthPayload]] = {
    "auth.login-succeeded": LoginSucceeded,
    "auth.login-failed": LoginFailed,
    "auth.logout": LoggedOut,
    "auth.password-reset-requested": PasswordResetRequested,
    "auth.password-changed": PasswordChanged,
    "auth.session-revoked": SessionRevoked,
    "auth.suspicious-login": SuspiciousLogin,
}


class AuthWebhook(Contract):
    """The body an upstream platform POSTs to `/v1/webhooks/auth`; `auth` depends on `type`."""

    type: AuthWebhookType
    occurred_at: AwareDatetime
    correlation_id: CorrelationId | None = None
    auth: AuthPayload

    @field_validator("auth", mode="wrap")
    @classmethod
    def _auth_for_type(
        cls, value: Any, _handler: ValidatorFunctionWrapHandler, info: ValidationInfo
    ) -> Any:
        return select_payload(value, info.data.get("type"), AUTH_PAYLOADS)


class AuthEvent(Envelope):
    """An authentication event as it travels on `auth.events`."""

    event_type: AuthEventType
    payload: AuthPayload

    @field_validator("payload", mode="wrap")
    @classmethod
    def _payload_for_type(
        cls, value: Any, _handler: ValidatorFunctionWrapHandler, info: ValidationInfo
    ) -> Any:
        return select_payload(value, info.data.get("event_type"), AUTH_PAYLOADS)
