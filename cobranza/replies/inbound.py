"""Reading what a debtor sent: the raw email (MIME, standard library ``email``) and the text a
person wrote, without the message they were answering (docs/domain.md#replies)."""

from __future__ import annotations

import email
import email.policy
import hashlib
import re
from dataclasses import dataclass
from email.utils import getaddresses, parseaddr, parsedate_to_datetime

from django.utils.html import strip_tags

# Lines that start the quoted message in common mail clients (Spanish and English): from here
# on the text is the reminder being answered, not the reply.
QUOTE_START = re.compile(
    r"^\s*("
    r"-{2,}\s*(original message|mensaje original|forwarded message|mensaje reenviado)\s*-{2,}"
    r"|(on|el)\s.{0,200}\s(wrote|escribió)\s*:"
    r"|(from|de)\s*:\s.*@.*"
    r"|_{10,}"
    r")\s*$",
    re.IGNORECASE,
)
MAX_TEXT = 20_000


class UnreadableMessage(ValueError):
    """Not an email we can read (no headers, no sender)."""


@dataclass
class ParsedEmail:
    message_id: str
    sender: str
    recipients: list[str]
    subject: str
    text: str
    sent_at: object  # datetime or None


def trim_quoted(text: str) -> str:
    """The reply without the quoted message below it: cut at the first quote header or at the
    first run of ``>`` lines, and drop trailing blank lines."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    kept: list[str] = []
    for line in lines:
        if QUOTE_START.match(line) or line.lstrip().startswith(">"):
            break
        kept.append(line)
    trimmed = "\n".join(kept).strip()
    # A reply that is nothing but quoted text (top-posting the other way): keep all of it.
    return (trimmed or text.strip())[:MAX_TEXT]


def _text_of(message) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, UnicodeError, AssertionError):  # unknown charset, bad encoding
        payload = part.get_payload(decode=True) or b""
        content = payload.decode("utf-8", errors="replace")
    if not isinstance(content, str):
        return ""
    if part.get_content_type() == "text/html":
        content = strip_tags(re.sub(r"(?i)<br\s*/?>|</p>|</div>", "\n", content))
    return content


def parse(raw: bytes) -> ParsedEmail:
    try:
        message = email.message_from_bytes(raw, policy=email.policy.default)
        sender = parseaddr(str(message.get("From", "")))[1]
        recipient_headers = [
            str(v) for name in ("To", "Cc", "Delivered-To", "X-Original-To") for v in message.get_all(name, [])
        ]
        subject = str(message.get("Subject", ""))
        message_id = str(message.get("Message-ID", "")).strip()
        text = _text_of(message)
    except (ValueError, TypeError, IndexError, AttributeError, LookupError) as exc:
        raise UnreadableMessage(str(exc)) from exc
    if not sender or "@" not in sender:
        raise UnreadableMessage("no sender address")
    try:
        sent_at = parsedate_to_datetime(str(message["Date"])) if message["Date"] else None
    except (TypeError, ValueError):
        sent_at = None
    recipients = [address for _name, address in getaddresses(recipient_headers) if address]
    return ParsedEmail(
        # No Message-ID: the same bytes posted twice are still the same message.
        message_id=(message_id or "sha256:" + hashlib.sha256(raw).hexdigest())[:255],
        sender=sender[:254],
        recipients=recipients,
        subject=subject[:255],
        text=trim_quoted(text),
        sent_at=sent_at,
    )
