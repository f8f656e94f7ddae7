"""A real SMTP listener (aiosmtpd) on the sandbox's own event loop, so mail sent with aiosmtplib
goes through the same `Sandbox.accept` as the HTTP providers, and its receipts through the same
batcher.

The message names its notification in `X-Tributary-Notification-Id`; its `Message-ID` is the
provider message id. `*@fail.test` answers 451 at DATA (a temporary failure the sender retries),
an outage answers 421 at MAIL FROM, an invalid address 553 at RCPT TO.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from email.parser import BytesHeaderParser
from email.policy import compat32

from aiosmtpd.smtp import SMTP, Envelope, Session

from sandbox.outcomes import is_email, is_notification_id
from sandbox.provider_requests import Send
from sandbox.service import Sandbox

NOTIFICATION_HEADER = "X-Tributary-Notification-Id"
PROVIDER = "smtp"
HOSTNAME = "sandbox.tributary.test"
DATA_SIZE_LIMIT = 1024 * 1024
BODY_CHARS = 1000
# The receipt webhook's bound for a provider message id.
MAX_MESSAGE_ID_CHARS = 256

# compat32: headers as plain strings, several times cheaper than the modern policy's objects.
_HEADERS = BytesHeaderParser(policy=compat32)


class SandboxSmtpHandler:
    """aiosmtpd handler hooks (`handle_<VERB>`), looked up by name on each command."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    async def handle_MAIL(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.sandbox.is_down(PROVIDER):
            return "421 4.3.2 Service not available (sandbox outage)"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if not is_email(address):
            return "553 5.1.3 Invalid recipient address"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        raw = envelope.original_content or b""
        headers = _HEADERS.parsebytes(raw)
        notification_id = str(headers.get(NOTIFICATION_HEADER) or "").strip()
        if not is_notification_id(notification_id):
            return f"550 5.6.0 The {NOTIFICATION_HEADER} header is missing or not an id"
        message_id = (
            str(headers.get("Message-ID") or "").strip() or f"<{uuid.uuid4().hex}@{HOSTNAME}>"
        )
        if len(message_id) > MAX_MESSAGE_ID_CHARS:
            return f"550 5.6.0 Message-ID longer than {MAX_MESSAGE_ID_CHARS} characters"
        subject = str(headers.get("Subject")) if headers.get("Subject") is not None else None
        body = raw.partition(b"\r\n\r\n")[2][:BODY_CHARS].decode(errors="replace")
        sends = [Send(r, notification_id, subject, body) for r in envelope.rcpt_tos]
        if not await self.sandbox.accept_all(PROVIDER, sends, message_id):
            return "451 4.3.0 Temporary failure (sandbox: a *@fail.test recipient)"
        return f"250 2.0.0 OK {message_id}"


async def start_smtp(sandbox: Sandbox, host: str, port: int) -> asyncio.Server:
    """Listen on `host:port` (0: any free port) in the running loop."""
    # aiosmtpd logs every connection at INFO; a sandbox taking 1,000 mails a second must not.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    handler = SandboxSmtpHandler(sandbox)
    loop = asyncio.get_running_loop()

    def protocol() -> SMTP:
        sandbox.smtp_connections += 1  # one protocol per connection: what clients reuse shows
        return SMTP(
            handler,
            hostname=HOSTNAME,
            ident="Tributary provider sandbox",
            data_size_limit=DATA_SIZE_LIMIT,
            enable_SMTPUTF8=True,
            loop=loop,
        )

    return await loop.create_server(protocol, host, port)
