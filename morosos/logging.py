"""Logging safety net: debtors' e-mail addresses and phone numbers, and their portal links
(the credential of the self-service page), never reach a log line.

Code should not log personal data in the first place (log ids, not addresses); this filter,
attached to the handlers in ``settings.LOGGING`` and to gunicorn's access and error logs
(``morosos.gunicorn_conf``), catches what slips through — a library that logs a recipient, an
SMTP error that quotes the address it refused, a request line or Referer carrying
``/portal/<token>`` — in the message, its arguments and the formatted traceback.
"""

from __future__ import annotations

import logging
import re

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# International numbers (+52 55 1234 5678, +34-600-000-000) and 10-digit local ones
# (55 1234 5678, 555-123-4567). ISO dates, times, amounts and short ids do not match.
PHONE = re.compile(
    r"(?<![\w+])\+\d[\d\s().-]{5,}\d(?!\w)"
    r"|(?<![\w.:-])\(?\d{2,4}\)?[\s.-]?\d{3,4}[\s.-]?\d{4}(?![\w:])"
)
# The debtor's self-service link is /portal/<signed token>[/...] (cobranza.portal.urls): the
# token is a credential wherever the path is logged (request line, Referer, "Not Found: ...").
# The staff-only /portal/revocar/<id>/ carries none. A token on its own, outside a path, has
# the TimestampSigner shape "<client>.<version>:<time>:<signature>".
PORTAL_PATH = re.compile(r"(/portal/)(?!revocar/)[^/\s?#\"']+")
PORTAL_TOKEN = re.compile(r"\b\d+\.\d+:[0-9A-Za-z]+:[\w-]{20,}")
EMAIL_MASK = "[correo]"
PHONE_MASK = "[teléfono]"
TOKEN_MASK = "[enlace]"

_formatter = logging.Formatter()


def redact(text: str) -> str:
    text = PORTAL_TOKEN.sub(TOKEN_MASK, PORTAL_PATH.sub(rf"\g<1>{TOKEN_MASK}", text))
    return PHONE.sub(PHONE_MASK, EMAIL.sub(EMAIL_MASK, text))


class RedactPersonalData(logging.Filter):
    """Rewrites a record in place (message, arguments, traceback) with e-mail addresses, phone
    numbers and portal tokens masked. Never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to the handler's error path
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = _formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True
