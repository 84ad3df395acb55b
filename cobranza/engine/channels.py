"""Channel backends, chosen by settings in the style of Django's EMAIL_BACKEND.

``DUNNING_SMS_BACKEND`` / ``DUNNING_WHATSAPP_BACKEND`` name a class with
``send(message: OutgoingMessage) -> SendResult``. Email goes through Django's own email
backends (SMTP in production, Mailpit in compose, console in development).

Backends raise ``TransientSendError`` for what may work later (connection refused, 4xx SMTP,
HTTP 5xx, timeouts) and ``PermanentSendError`` for what never will (bad address, HTTP 4xx);
the dispatcher retries the first with backoff and records the second.
"""

from __future__ import annotations

import json
import logging
import smtplib
import sys
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from email.mime.image import MIMEImage
from pathlib import Path

from django.conf import settings
from django.core.mail import EmailMessage, EmailMultiAlternatives, get_connection
from django.core.mail.message import SafeMIMEMultipart
from django.utils.module_loading import import_string

from accounts import clock

log = logging.getLogger(__name__)


class SendError(Exception):
    pass


class TransientSendError(SendError):
    """Try again later."""


class PermanentSendError(SendError):
    """Retrying cannot help."""


@dataclass
class OutgoingMessage:
    notice_id: int
    channel: str
    recipient: str
    subject: str
    body: str
    message_id: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    # Email only: the HTML alternative of ``body`` and the images it shows by Content-ID,
    # as (cid, bytes, MIME type) — see cobranza.engine.html_email.
    html: str = ""
    images: tuple = ()
    # Email only. Debtor mail names the business that is owed ("sender_name <sender_email>",
    # its reply-to); empty: DEFAULT_FROM_EMAIL (staff mail such as the weekly digest).
    from_email: str = ""
    reply_to: list[str] = field(default_factory=list)


@dataclass
class SendResult:
    provider_ref: str = ""


# --- email -------------------------------------------------------------------------------


class HTMLEmail(EmailMultiAlternatives):
    """multipart/alternative: the text, then the HTML — wrapped with its inline images in a
    multipart/related part, so clients that show the text never list the logo as an attachment
    (RFC 2387; Django's own attach() would put the images beside the alternatives)."""

    def __init__(self, *args, html: str, images=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.inline_images = tuple(images)
        self.attach_alternative(html, "text/html")

    def _create_mime_attachment(self, content, mimetype):
        part = super()._create_mime_attachment(content, mimetype)
        if mimetype != "text/html" or not self.inline_images:
            return part
        related = SafeMIMEMultipart(_subtype="related", encoding=self.encoding or settings.DEFAULT_CHARSET)
        related.attach(part)
        for cid, data, image_type in self.inline_images:
            image = MIMEImage(data, _subtype=image_type.split("/", 1)[1])
            image["Content-ID"] = f"<{cid}>"
            image["Content-Disposition"] = "inline"
            related.attach(image)
        return related


def _email_connection():
    return get_connection(fail_silently=False, timeout=getattr(settings, "DUNNING_EMAIL_TIMEOUT", 20))


def send_email(message: OutgoingMessage, *, connection=None) -> SendResult:
    """Send one email, on ``connection`` when given (an open one, kept open: ``EmailSession``),
    else on a connection of its own."""
    headers = {"Message-ID": message.message_id, **message.headers}
    fields = {
        "subject": message.subject,
        "body": message.body,
        "from_email": message.from_email or settings.DEFAULT_FROM_EMAIL,
        "to": [message.recipient],
        "reply_to": message.reply_to or None,
        "headers": headers,
    }
    email = HTMLEmail(**fields, html=message.html, images=message.images) if message.html else EmailMessage(**fields)
    try:
        sent = (connection or _email_connection()).send_messages([email])
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _msg in exc.recipients.values()]
        if codes and all(400 <= code < 500 for code in codes):
            raise TransientSendError(f"SMTP recipient deferred: {codes}") from exc
        raise PermanentSendError(f"SMTP recipient refused: {codes}") from exc
    except smtplib.SMTPResponseException as exc:
        if 400 <= exc.smtp_code < 500:
            raise TransientSendError(f"SMTP {exc.smtp_code}") from exc
        raise PermanentSendError(f"SMTP {exc.smtp_code}") from exc
    except (smtplib.SMTPException, OSError) as exc:  # connection refused, reset, timeout
        raise TransientSendError(f"SMTP unavailable: {type(exc).__name__}") from exc
    if sent != 1:
        raise TransientSendError("the email backend reported nothing sent")
    return SendResult(provider_ref=message.message_id)


class EmailSession:
    """One SMTP connection for many emails (a dispatch batch): opened at the first email, kept
    open between them, closed by ``close`` (or the ``with`` block). After any error the
    connection is dropped and the next email opens a new one (a 421 closes the server's side;
    after a refused recipient the state of the session is not worth trusting). Errors are
    classified as ``send_email`` does; other channels pass through to ``send``."""

    def __init__(self):
        self._connection = None
        self.opened = 0  # connections opened: one per batch, plus one per reconnection

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, message: OutgoingMessage) -> SendResult:
        if message.channel != "email":
            return send(message)
        try:
            if self._connection is None:
                connection = _email_connection()
                connection.open()  # opened here, send_messages leaves it open
                self._connection = connection
                self.opened += 1
        except (smtplib.SMTPException, OSError) as exc:
            raise TransientSendError(f"SMTP unavailable: {type(exc).__name__}") from exc
        try:
            return send_email(message, connection=self._connection)
        except SendError:
            self.close()
            raise

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            connection.close()
        except (smtplib.SMTPException, OSError):  # already gone: nothing to close
            log.info("SMTP connection already closed")


# --- SMS / WhatsApp ----------------------------------------------------------------------


class FileBackend:
    """Appends each message as a JSON line to ``<outbox>/<channel>.jsonl`` (the default:
    lets a developer or a test read exactly what would have been sent)."""

    def __init__(self, outbox: str | Path | None = None):
        self.outbox = Path(outbox or getattr(settings, "DUNNING_OUTBOX_DIR", settings.VAR_DIR / "outbox"))

    def send(self, message: OutgoingMessage) -> SendResult:
        self.outbox.mkdir(parents=True, exist_ok=True)
        record = {**asdict(message), "at": clock.now().isoformat()}
        path = self.outbox / f"{message.channel}.jsonl"
        with path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        return SendResult(provider_ref=f"file:{path.name}:{message.notice_id}")


class ConsoleBackend:
    """Development: the message on standard output, like Django's console email backend.
    Not through logging: logs must hold no personal data (recipient, text naming the client)."""

    def send(self, message: OutgoingMessage) -> SendResult:
        sys.stdout.write(f"[{message.channel}] → {message.recipient}\n{message.body}\n\n")
        sys.stdout.flush()
        log.info("%s notice %s written to the console", message.channel, message.notice_id)
        return SendResult(provider_ref=f"console:{message.notice_id}")


class HTTPBackend:
    """A provider adapter over HTTP: POSTs JSON ``{to, body, reference}`` with a bearer
    token to ``DUNNING_<CHANNEL>_URL``. Most SMS and WhatsApp gateways take this shape; a
    provider with another one gets its own small subclass overriding ``payload``."""

    def __init__(self, channel: str):
        prefix = f"DUNNING_{channel.upper()}"
        self.url = getattr(settings, f"{prefix}_URL", "")
        self.token = getattr(settings, f"{prefix}_TOKEN", "")
        self.timeout = getattr(settings, f"{prefix}_TIMEOUT", 15)
        if not self.url:
            raise PermanentSendError(f"{prefix}_URL is not configured")

    def payload(self, message: OutgoingMessage) -> dict:
        return {"to": message.recipient, "body": message.body, "reference": message.message_id}

    def send(self, message: OutgoingMessage) -> SendResult:
        request = urllib.request.Request(  # noqa: S310 - the URL is the operator's own setting
            self.url,
            data=json.dumps(self.payload(message)).encode(),
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {self.token}",
                "Idempotency-Key": message.message_id,
            },
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                body = response.read(65536)
        except urllib.error.HTTPError as exc:
            if exc.code == 429 or exc.code >= 500:
                raise TransientSendError(f"HTTP {exc.code}") from exc
            raise PermanentSendError(f"HTTP {exc.code}") from exc
        except (TimeoutError, urllib.error.URLError, OSError) as exc:
            raise TransientSendError(f"provider unreachable: {type(exc).__name__}") from exc
        try:
            ref = str(json.loads(body or b"{}").get("id", ""))
        except (ValueError, AttributeError):
            ref = ""
        return SendResult(provider_ref=ref)


def _backend(channel: str):
    path = getattr(settings, f"DUNNING_{channel.upper()}_BACKEND", "cobranza.engine.channels.FileBackend")
    cls = import_string(path)
    return cls(channel) if cls is HTTPBackend or issubclass(cls, HTTPBackend) else cls()


def send(message: OutgoingMessage) -> SendResult:
    if message.channel == "email":
        return send_email(message)
    if message.channel in ("sms", "whatsapp"):
        return _backend(message.channel).send(message)
    raise PermanentSendError(f"no backend sends {message.channel}")
