"""Email over SMTP (aiosmtplib): the fallback when the HTTP email provider's circuit is open.

The `Message-ID` we generate is the provider message id: SMTP servers hand back no id of their
own that a later bounce would name, while the Message-ID travels with the message. Our
notification id rides in `X-Tributary-Notification-Id`.

One connection per message: SMTP is the secondary path, used while the primary is down, and a
connection pool would be one more piece of state to get right for a path that is rarely hot.
"""

from __future__ import annotations

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


class SmtpSender:
    def __init__(self, settings: ProviderSettings, timeout_s: float) -> None:
        self._settings = settings
        self._timeout_s = timeout_s
        self._domain = settings.email_from.rpartition("@")[2] or "tributary.local"

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
        settings = self._settings
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        try:
            await aiosmtplib.send(
                email,
                hostname=settings.smtp_host,
                port=settings.smtp_port,
                username=settings.smtp_username,
                password=password,
                start_tls=settings.smtp_start_tls,
                timeout=self._timeout_s,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [refused.code for refused in exc.recipients]
            text = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
            raise _by_code(min(codes, default=550), f"recipient refused: {text}") from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise _by_code(exc.code, f"{exc.code} {exc.message}") from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            # Timeouts, refused or dropped connections: the server may be back later.
            raise RetriableSendError(PROVIDER, f"{type(exc).__name__}: {exc}") from exc
        return SendResult(PROVIDER, str(email["Message-ID"]))


def _by_code(code: int, reason: str) -> RetriableSendError | PermanentSendError:
    """4xx replies are transient by definition (RFC 5321 4.2.1), 5xx permanent."""
    if 400 <= code < 500:
        return RetriableSendError(PROVIDER, reason)
    return PermanentSendError(PROVIDER, reason)
