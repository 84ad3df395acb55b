"""Small helpers shared by accounts and cobranza: locale-aware money formatting (one definition
for templates, timeline texts and mail), who to record as the author of a change, and the
machine-to-machine rules: how a JSON request body is read and what a webhook signature covers."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import TYPE_CHECKING

from django.conf import settings

from accounts import numbers

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User


def money_locale(currency: str = "", language: str | None = None) -> str:
    """The BCP 47 tag of the active number format (``accounts.numbers``), for the browser."""
    return numbers.active().code


def money_str(amount, currency: str, language: str | None = None) -> str:
    """``accounts.numbers.format_money`` under its historical name: ``1234.5, "MXN"`` →
    "$1,234.50" (es-MX). The language no longer changes the digits (docs/domain.md#number-formats)."""
    return numbers.format_money(amount, currency)


def actor(by: User | AnonymousUser | None) -> User | None:
    """The user to record as a change's author (``created_by``, ``author``...), or None.

    Services receive the acting user as ``by``: a logged-in person; ``None`` when no person
    acted (the planner, workers, nightly jobs, the debtor's portal, payment webhooks); or an
    ``AnonymousUser`` from a request without a login. A foreign key cannot point at an
    anonymous user, so everything but a person is stored as NULL, which the UI shows as
    «Sistema» (the ``user_label`` filter)."""
    return by if getattr(by, "is_authenticated", False) else None


def client_ip(request) -> str | None:
    """The client's address: REMOTE_ADDR, unless ``AXES_PROXY_COUNT`` trusted reverse proxies
    stand in front (docs/scaling.md). Then REMOTE_ADDR is the nearest proxy's, the same for
    everyone, and the client is the address the outermost trusted proxy wrote into
    X-Forwarded-For: the Nth entry from the right. Entries left of it come from the client
    and are ignored, so a forged header changes nothing. None when there is none (a
    Unix-socket proxy gives an empty REMOTE_ADDR; axes stores the address in an inet column)."""
    proxies = getattr(settings, "AXES_IPWARE_PROXY_COUNT", None) or 0
    if proxies:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        if len(forwarded) >= proxies and forwarded[-proxies]:
            return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR") or None


# --- machine-to-machine ---------------------------------------------------------------------


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def parse_json(raw: bytes | str):
    """The one reader of JSON request bodies (the payment webhook, the API's parser). Any
    malformed body — bad syntax, invalid UTF-8, NaN/Infinity, or nesting deep enough to exhaust
    the interpreter's recursion limit (``{"a":`` × 50,000) — raises ValueError, which callers
    answer with a 400; nothing else escapes as a 500."""
    try:
        return json.loads(raw, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``"<timestamp>.<raw body>"``: what the payment webhook verifies and
    what outgoing webhooks send. Signing the timestamp lets the receiver refuse replays."""
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
