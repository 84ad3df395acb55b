"""The debtor's credential: signed, expiring, revocable self-service links, and the rate limit
on using them.

A link is ``SELF_SERVICE_URL + "/" + token``: ``SELF_SERVICE_URL`` must be this portal's
public address (``https://<host>/portal``; unset, reminders carry no link). The token is a
``TimestampSigner`` signature (own salt) of ``"<client id>.<version>"``. It needs no login
and reveals one client's statement only.

- **Expiry**: ``SELF_SERVICE_LINK_DAYS`` after it was signed (the timestamp is in the token).
- **Revocation**: ``SelfServiceAccess.version`` is part of the signed value; ``revoke`` raises
  it, so every link signed before stops working while new reminders carry new links.
- **Rate limit**: 30 requests per 600 seconds per token and per IP (the optional settings
  ``SELF_SERVICE_RATE_LIMIT`` / ``SELF_SERVICE_RATE_WINDOW`` override them), counted by
  django-ratelimit in the shared cache (Redis or the database, see ``CACHES`` in settings),
  so the limit holds across web processes and machines and survives a restart; invalid
  tokens count too, so guessing is limited per IP.

Its own module because reminders (``cobranza.engine.messaging``) carry the link, and the
portal's services depend on the engine through commitments: keeping the credential apart
keeps the imports one-way.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core import signing
from django.db import transaction
from django.db.models import F
from django.urls import reverse
from django.utils.translation import gettext as _
from django_ratelimit.core import is_ratelimited

from accounts import clock
from accounts import services as ledger
from accounts.models import Client, Interaction
from accounts.services import ensure_can_work
from accounts.utils import actor
from cobranza.models import SelfServiceAccess

SALT = "morosos.selfservice.link"
# Defaults of the optional settings SELF_SERVICE_RATE_LIMIT / SELF_SERVICE_RATE_WINDOW (seconds).
RATE_LIMIT = 30
RATE_WINDOW = 600


# --- links -----------------------------------------------------------------------------------


class LinkError(Exception):
    """A self-service token that cannot be used; ``reason`` is tampered, expired or revoked."""

    reason = "tampered"


class LinkTampered(LinkError):
    reason = "tampered"


class LinkExpired(LinkError):
    reason = "expired"


class LinkRevoked(LinkError):
    reason = "revoked"


def _signer() -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=SALT)


def _version_of(client_id: int) -> int:
    # Without a SelfServiceAccess row nothing was ever revoked: version 1 (the model default).
    version = SelfServiceAccess.objects.filter(client_id=client_id).values_list("version", flat=True).first()
    return version or 1


def token_for(client: Client) -> str:
    return _signer().sign(f"{client.pk}.{_version_of(client.pk)}")


def link_for(client: Client) -> str:
    """The client's self-service link: ``SELF_SERVICE_URL`` (the public address of this
    portal, e.g. ``https://cobranza.example.com/portal``) plus the token, or the site-relative
    path when that setting is empty."""
    token = token_for(client)
    base = getattr(settings, "SELF_SERVICE_URL", "") or ""
    if base:
        return f"{base.rstrip('/')}/{token}"
    return reverse("selfservice:statement", args=[token])


def client_from_token(token: str) -> Client:
    """The client a token was signed for; ``LinkTampered``, ``LinkExpired`` or ``LinkRevoked``
    otherwise. The signature is checked before the age, so a forged token never reads as
    merely expired."""
    try:
        value = _signer().unsign(token, max_age=dt.timedelta(days=settings.SELF_SERVICE_LINK_DAYS))
    except signing.SignatureExpired as exc:
        raise LinkExpired(_("El enlace ha caducado.")) from exc
    except signing.BadSignature as exc:
        raise LinkTampered(_("El enlace no es válido.")) from exc
    try:
        client_id, version = (int(part) for part in value.split("."))
    except ValueError as exc:
        raise LinkTampered(_("El enlace no es válido.")) from exc
    client = Client.objects.select_related("collector").filter(pk=client_id).first()
    if client is None:
        raise LinkTampered(_("El enlace no es válido."))
    if version != _version_of(client_id):
        raise LinkRevoked(_("El enlace fue revocado."))
    return client


def revoke(*, by: AbstractBaseUser | None, client: Client) -> SelfServiceAccess:
    """Revoke every self-service link issued so far for ``client``; later reminders carry new
    links."""
    ensure_can_work(by, client)
    with transaction.atomic():
        access, _created = SelfServiceAccess.objects.select_for_update().get_or_create(client=client)
        access.version = F("version") + 1
        access.revoked_at = clock.now()
        access.revoked_by = actor(by)
        access.save(update_fields=["version", "revoked_at", "revoked_by"])
        access.refresh_from_db(fields=["version"])
        ledger.interaction_log(
            by=by,
            client=client,
            kind=Interaction.Kind.SYSTEM,
            direction=Interaction.Direction.INTERNAL,
            summary=_("Enlaces de autoservicio revocados"),
            body=_("Los enlaces enviados hasta ahora dejan de funcionar; los próximos avisos llevan uno nuevo."),
        )
    return access


# --- rate limiting ---------------------------------------------------------------------------


def rate_window() -> int:
    return getattr(settings, "SELF_SERVICE_RATE_WINDOW", RATE_WINDOW)


def _client_ip(_group, request) -> str:
    # REMOTE_ADDR only: X-Forwarded-For is set by the client unless a trusted proxy rewrites
    # it, and a spoofable key would make the per-IP limit useless. (django-ratelimit's "ip"
    # key raises on an empty REMOTE_ADDR, which a Unix-socket proxy gives.)
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def rate_limited(request, *, token: str) -> bool:
    """Count one request for the client's address and for this token; True once either is
    over the limit. django-ratelimit hashes what it counts: the cache never holds a link."""
    rate = f"{getattr(settings, 'SELF_SERVICE_RATE_LIMIT', RATE_LIMIT)}/{rate_window()}s"
    # Both counted on every request (no short-circuit): a flood of one token still uses up
    # the address's allowance, and guesses from one address still count per token.
    by_ip = is_ratelimited(request, group="selfservice:ip", key=_client_ip, rate=rate, increment=True)
    by_token = is_ratelimited(request, group="selfservice:token", key=lambda _g, _r: token, rate=rate, increment=True)
    return by_ip or by_token
