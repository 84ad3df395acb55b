"""The reply address: every debtor email's Reply-To names the client it was sent about, so a
reply finds its way back to that client's timeline (docs/domain.md#replies).

``<local>+r<client id>-<signature>@<domain>``: plus-addressing on the business's reply-to
address (its sender, or our default sender, when it has none). The signature is a keyed HMAC
of the client id (the key material of ``django.core.signing``, with its own salt), so nobody can
write a valid address for another client. It is lowercase hex, not base64: mail systems may
fold the case of an address on the way back.
"""

from __future__ import annotations

import re
from email.utils import getaddresses, parseaddr

from django.conf import settings
from django.utils.crypto import constant_time_compare, salted_hmac

from cobranza.business import selectors as business

SALT = "cobranza.replies.token"
SIGNATURE_CHARS = 20
TOKEN_RE = re.compile(rf"r(\d{{1,12}})-([0-9a-f]{{{SIGNATURE_CHARS}}})", re.IGNORECASE)


def _signature(client_id: int, secret: str | None = None) -> str:
    return salted_hmac(SALT, str(client_id), secret=secret, algorithm="sha256").hexdigest()[:SIGNATURE_CHARS]


def token(client_id: int) -> str:
    return f"r{client_id}-{_signature(client_id)}"


def client_id_from(value: str) -> int | None:
    """The client id a token names when its signature is ours; None otherwise (a forged or
    damaged token reads as no token at all)."""
    match = TOKEN_RE.fullmatch((value or "").strip())
    if not match:
        return None
    client_id, given = int(match.group(1)), match.group(2).lower()
    # Addresses already sent stay valid while an old secret key is kept as a fallback.
    for secret in (settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", ())):
        if constant_time_compare(_signature(client_id, secret), given):
            return client_id
    return None


def base_address(profile=None) -> str:
    profile = profile if profile is not None else business.current()
    return profile.reply_to or profile.sender_email or parseaddr(settings.DEFAULT_FROM_EMAIL)[1]


def reply_address(client_id: int, *, profile=None) -> str:
    """The Reply-To of an email about this client; the bare base address when it cannot carry
    a plus tag (already has one, or is not an address)."""
    base = base_address(profile)
    local, at, domain = base.rpartition("@")
    if not at or not local or "+" in local:
        return base
    return f"{local}+{token(client_id)}@{domain}"


def _tags(values) -> list[str]:
    """The plus tags shaped like our tokens in these addresses or address headers."""
    tags = []
    for _name, address in getaddresses([v for v in values if v]):
        tag = address.rpartition("@")[0].partition("+")[2]
        if tag and TOKEN_RE.fullmatch(tag):
            tags.append(tag)
    return tags


def has_token(*values: str) -> bool:
    """Whether any address carries something shaped like a reply token (valid or not)."""
    return bool(_tags(values))


def client_id_in_addresses(*values: str) -> int | None:
    """The first client named by a validly signed token in these addresses (To, Delivered-To…)."""
    for tag in _tags(values):
        found = client_id_from(tag)
        if found is not None:
            return found
    return None
