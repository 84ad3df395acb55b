"""Logging safety net: debtors' e-mail addresses and phone numbers never reach a log line.

Code should not log personal data in the first place (log ids, not addresses); this filter,
attached to the handlers in ``settings.LOGGING``, catches what slips through — a library that
logs a recipient, an SMTP error that quotes the address it refused — in the message, its
arguments and the formatted traceback.
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
EMAIL_MASK = "[correo]"
PHONE_MASK = "[teléfono]"

_formatter = logging.Formatter()


def redact(text: str) -> str:
    return PHONE.sub(PHONE_MASK, EMAIL.sub(EMAIL_MASK, text))


class RedactPersonalData(logging.Filter):
    """Rewrites a record in place (message, arguments, traceback) with e-mail addresses and
    phone numbers masked. Never drops a record."""

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
