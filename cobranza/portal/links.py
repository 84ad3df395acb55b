"""The debtor's credential: signed, expiring, revocable self-service links, and the rate limit
on using them.

A link is the business's public address (``BusinessProfile.public_base_url``, set on the
business settings page; ``make run`` sets it to its own address) plus ``/portal/<token>``;
without a public address reminders carry no link. The token is a ``TimestampSigner``
signature (own salt) of ``"<client id>.<version>"``. It needs no login and reveals one
client's statement only.

SMS and WhatsApp carry a **short link** instead (``/p/<code>``, about 25 characters after the
address): ``<client id>-<day>-<MAC>`` in base 36, the MAC a salted HMAC over the client, its
link version and the day it was issued. It is as revocable and as expiring as the long link
(same version, same ``SELF_SERVICE_LINK_DAYS``), stores nothing, and redirects to a freshly
signed long link.

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

import contextlib
import contextvars
import datetime as dt
from collections.abc import Iterator

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core import signing
from django.db import transaction
from django.db.models import F
from django.urls import reverse
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.translation import gettext as _
from django_ratelimit.core import is_ratelimited

from accounts import clock
from accounts import services as ledger
from accounts.models import Client, Interaction
from accounts.services import ensure_can_work
from accounts.utils import actor, client_ip
from cobranza.business import selectors as business
from cobranza.models import SelfServiceAccess

SALT = "morosos.selfservice.link"
SHORT_SALT = "morosos.selfservice.short"
# 16 base-36 characters of MAC (~82 bits); guessing is also rate limited per address.
SHORT_MAC_CHARS = 16
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


class _ClockSigner(signing.TimestampSigner):
    """Stamps links with the one clock (docs/domain.md#one-clock): a replayed day's reminders
    carry the links that day would have signed."""

    def timestamp(self):
        return signing.b62_encode(int(clock.now().timestamp()))


def _signer() -> signing.TimestampSigner:
    return _ClockSigner(salt=SALT)


_known_versions: contextvars.ContextVar[dict[int, int] | None] = contextvars.ContextVar("link_versions", default=None)


@contextlib.contextmanager
def versions_read(client_ids) -> Iterator[None]:
    """Inside, the link versions of ``client_ids`` come from one query made on entry (a
    dispatch batch signs fifty links). A revocation committed meanwhile applies from the next
    batch, as it would to a message rendered a moment earlier."""
    ids = list(client_ids)
    found = dict(SelfServiceAccess.objects.filter(client_id__in=ids).values_list("client_id", "version"))
    token = _known_versions.set({client_id: found.get(client_id) or 1 for client_id in ids})
    try:
        yield
    finally:
        _known_versions.reset(token)


def _version_of(client_id: int) -> int:
    known = _known_versions.get()
    if known is not None and client_id in known:
        return known[client_id]
    # Without a SelfServiceAccess row nothing was ever revoked: version 1 (the model default).
    version = SelfServiceAccess.objects.filter(client_id=client_id).values_list("version", flat=True).first()
    return version or 1


def token_for(client: Client) -> str:
    return _signer().sign(f"{client.pk}.{_version_of(client.pk)}")


def url_for_token(token: str, profile=None) -> str:
    """The portal address of ``token`` on the business's public address (site-relative when
    none is configured). Sending, the preview and the sample data all build links here."""
    profile = profile if profile is not None else business.current()
    return business.public_url(profile, reverse("selfservice:statement", args=[token]))


def link_for(client: Client, profile=None) -> str:
    """The client's self-service link: the public address plus ``/portal/<token>``."""
    return url_for_token(token_for(client), profile)


def _b36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if not number:
            return out


def _short_mac(client_id: int, version: int, day: int) -> str:
    digest = salted_hmac(SHORT_SALT, f"{client_id}.{version}.{day}", algorithm="sha256").digest()
    return _b36(int.from_bytes(digest[:11], "big")).rjust(SHORT_MAC_CHARS, "0")[:SHORT_MAC_CHARS]


def _epoch_day(day: dt.date) -> int:
    return (day - dt.date(2020, 1, 1)).days


def short_code_for(client: Client, *, today: dt.date | None = None) -> str:
    day = _epoch_day(today or clock.localdate())
    return f"{_b36(client.pk)}-{_b36(day)}-{_short_mac(client.pk, _version_of(client.pk), day)}"


def short_path_for(client: Client, *, today: dt.date | None = None) -> str:
    return reverse("portal_short_link", args=[short_code_for(client, today=today)])


def short_link_for(client: Client, profile=None, *, today: dt.date | None = None) -> str:
    """The client's short link (SMS, WhatsApp): the public address plus ``/p/<code>``."""
    profile = profile if profile is not None else business.current()
    return business.public_url(profile, short_path_for(client, today=today))


def client_from_short_code(code: str) -> Client:
    """The client a short code was issued for; the same errors as ``client_from_token``."""
    try:
        id_part, day_part, mac = code.split("-")
        client_id, day = int(id_part, 36), int(day_part, 36)
    except ValueError as exc:
        raise LinkTampered(_("El enlace no es válido.")) from exc
    if len(mac) != SHORT_MAC_CHARS or client_id <= 0 or client_id > 2**62:
        raise LinkTampered(_("El enlace no es válido."))
    version = _version_of(client_id)
    if not constant_time_compare(mac, _short_mac(client_id, version, day)):
        # Perhaps signed before a revocation: the MAC of an older version says "revoked".
        if any(
            constant_time_compare(mac, _short_mac(client_id, old, day)) for old in range(max(1, version - 3), version)
        ):
            raise LinkRevoked(_("El enlace fue revocado."))
        raise LinkTampered(_("El enlace no es válido."))
    if _epoch_day(clock.localdate()) - day > settings.SELF_SERVICE_LINK_DAYS:
        raise LinkExpired(_("El enlace ha caducado."))
    client = Client.objects.select_related("collector").filter(pk=client_id).first()
    if client is None:
        raise LinkTampered(_("El enlace no es válido."))
    return client


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
    # The address a forged X-Forwarded-For cannot change (a spoofable key would make the
    # per-IP limit useless); behind trusted proxies, the one they forwarded (docs/scaling.md).
    # (django-ratelimit's "ip" key raises on an empty REMOTE_ADDR, which a Unix-socket proxy gives.)
    return client_ip(request) or "unknown"


def rate_limited(request, *, token: str) -> bool:
    """Count one request for the client's address and for this token; True once either is
    over the limit. django-ratelimit hashes what it counts: the cache never holds a link."""
    rate = f"{getattr(settings, 'SELF_SERVICE_RATE_LIMIT', RATE_LIMIT)}/{rate_window()}s"
    # Both counted on every request (no short-circuit): a flood of one token still uses up
    # the address's allowance, and guesses from one address still count per token.
    by_ip = is_ratelimited(request, group="selfservice:ip", key=_client_ip, rate=rate, increment=True)
    by_token = is_ratelimited(request, group="selfservice:token", key=lambda _g, _r: token, rate=rate, increment=True)
    return by_ip or by_token
