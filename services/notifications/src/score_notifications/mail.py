"""A notification as an e-mail, over SMTP with `aiosmtplib`: a plain-text and an HTML part, in
the subscription's language. The address is never logged, nor the server's answer, which can
quote it: an error is the SMTP code, or the exception's type."""

from __future__ import annotations

from email.message import EmailMessage

import aiosmtplib

from score_notifications.messages import Message
from score_notifications.settings import NotificationsSettings
from score_notifications.webhook import Answer


def compose(message: Message, *, sender: str, to: str, message_id: str) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = to
    mail["Subject"] = message.subject
    # The same delivery has the same Message-ID at every attempt: a resend after a crash can be
    # recognised as the same mail.
    mail["Message-ID"] = f"<{message_id}@score.notifications>"
    mail["X-SCORE-Notification"] = message_id
    mail.set_content(message.text)
    mail.add_alternative(message.html, subtype="html")
    return mail


async def send(
    settings: NotificationsSettings, message: Message, *, to: str, message_id: str
) -> Answer:
    mail = compose(message, sender=settings.smtp_sender, to=to, message_id=message_id)
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    try:
        await aiosmtplib.send(
            mail,
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=password,
            start_tls=True if settings.smtp_starttls else False,
            use_tls=settings.smtp_tls,
            timeout=settings.notifications_timeout_seconds,
        )
    except aiosmtplib.SMTPResponseException as error:
        return Answer(status=None, error=f"SMTP {error.code}")
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
        return Answer(status=None, error=type(error).__name__)
    return Answer(status=250, error=None)
