"""Email over SMTP (aiosmtplib): the fallback when the HTTP email provider's circuit is open.

The `Message-ID` we generate is the provider message id: SMTP servers hand back no id of their
own that a later bounce would name, while the Message-ID travels with the message. Our
notification id rides in `X-Tributary-Notification-Id`. SMTP has no receipt webhook and no
signature of its own: whatever relays its outcomes (a DSN parser) posts our plain shape
(`streams.providers.receipts.plain_receipts`), signed with Standard Webhooks.

Connections are kept and reused, as mail clients that send in volume do: a send takes an idle
connection (checked with NOOP first if it sat idle long enough for the server to have dropped
it), or opens one; after the send it goes back, up to `max_idle` kept. A connection that fails
(dropped, timed out) is discarded and the send is a retriable error like any other; one that
answered a refusal is reset (RSET) and kept. When the primary email provider fails over here,
every email of the worker takes this path, and a TLS handshake and login per message would be
most of its cost.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import make_msgid

import aiosmtplib

from streams.providers.base import (
    OutboundMessage,
    PermanentSendError,
    RetriableSendError,
    SendResult,
)
from streams.settings import ProviderSettings

PROVIDER = "smtp"
NOTIFICATION_ID_HEADER = "X-Tributary-Notification-Id"
# A connection idle longer than this is checked with NOOP before it is used again (servers drop
# idle sessions after a minute or more; RFC 5321 asks them to wait at least five).
IDLE_CHECK_S = 10.0
_CONNECTION_ERRORS = (aiosmtplib.SMTPException, OSError)


class SmtpSender:
    def __init__(
        self,
        settings: ProviderSettings,
        timeout_s: float,
        *,
        max_idle: int = 8,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._timeout_s = timeout_s
        self._domain = settings.email_from.rpartition("@")[2] or "tributary.local"
        self._max_idle = max_idle
        self._clock = clock
        # Connected clients not in use, each with when it was last used; the newest last.
        self._idle: list[tuple[aiosmtplib.SMTP, float]] = []
        self.connections_opened = 0

    @property
    def provider(self) -> str:
        return PROVIDER

    def build(self, message: OutboundMessage) -> EmailMessage:
        email = EmailMessage()
        email["From"] = self._settings.email_from
        email["To"] = message.recipient
        email["Subject"] = message.subject or ""
        email["Message-ID"] = make_msgid(domain=self._domain)
        email[NOTIFICATION_ID_HEADER] = message.notification_id
        email.set_content(message.body)
        return email

    async def send(self, message: OutboundMessage) -> SendResult:
        email = self.build(message)
        try:
            client = await self._take()
        except _CONNECTION_ERRORS as exc:
            raise RetriableSendError(PROVIDER, f"connecting: {type(exc).__name__}: {exc}") from exc
        try:
            await client.send_message(email)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            await self._reset(client)
            codes = [refused.code for refused in exc.recipients]
            text = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
            raise _by_code(min(codes, default=550), f"recipient refused: {text}") from exc
        except aiosmtplib.SMTPServerDisconnected as exc:
            client.close()
            raise RetriableSendError(PROVIDER, f"{type(exc).__name__}: {exc}") from exc
        except aiosmtplib.SMTPResponseException as exc:
            await self._reset(client)
            raise _by_code(exc.code, f"{exc.code} {exc.message}") from exc
        except _CONNECTION_ERRORS as exc:
            # Timeouts, refused or dropped connections: the server may be back later.
            client.close()
            raise RetriableSendError(PROVIDER, f"{type(exc).__name__}: {exc}") from exc
        self._give_back(client)
        return SendResult(PROVIDER, str(email["Message-ID"]))

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for client, _ in idle:
            client.close()

    async def _take(self) -> aiosmtplib.SMTP:
        while self._idle:
            client, last_used_s = self._idle.pop()
            if not client.is_connected:
                continue
            if self._clock() - last_used_s > IDLE_CHECK_S:
                try:
                    await client.noop()
                except _CONNECTION_ERRORS:
                    client.close()
                    continue
            return client
        return await self._connect()

    async def _connect(self) -> aiosmtplib.SMTP:
        settings = self._settings
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        client = aiosmtplib.SMTP(
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=password,
            start_tls=settings.smtp_start_tls,
            timeout=self._timeout_s,
        )
        await client.connect()
        self.connections_opened += 1
        return client

    async def _reset(self, client: aiosmtplib.SMTP) -> None:
        """After a refusal the session is still good once its transaction is reset."""
        try:
            await client.rset()
        except _CONNECTION_ERRORS:
            client.close()
            return
        self._give_back(client)

    def _give_back(self, client: aiosmtplib.SMTP) -> None:
        if len(self._idle) >= self._max_idle:
            client.close()
            return
        self._idle.append((client, self._clock()))


def _by_code(code: int, reason: str) -> RetriableSendError | PermanentSendError:
    """4xx replies are transient by definition (RFC 5321 4.2.1), 5xx permanent."""
    if 400 <= code < 500:
        return RetriableSendError(PROVIDER, reason)
    return PermanentSendError(PROVIDER, reason)
