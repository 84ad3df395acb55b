"""The debtor's self-service page: signed links, what the page shows, and what it records.

A link is ``SELF_SERVICE_URL + "/" + token``: ``SELF_SERVICE_URL`` must be this portal's
public address (``https://<host>/portal``; unset, reminders carry no link). The token is a
``TimestampSigner`` signature (own salt) of ``"<client id>.<version>"``. It needs no login
and reveals one client's statement only.

- **Expiry**: ``SELF_SERVICE_LINK_DAYS`` after it was signed (the timestamp is in the token).
- **Revocation**: ``SelfServiceAccess.version`` is part of the signed value; ``revoke`` raises
  it, so every link signed before stops working while new reminders carry new links.
- **Rate limit**: 30 requests per 600 seconds per token and per IP (the optional settings
  ``SELF_SERVICE_RATE_LIMIT`` / ``SELF_SERVICE_RATE_WINDOW`` override them), counted in
  Django's configured cache; invalid tokens count too, so guessing is limited per IP. The
  default cache is per process (LocMemCache): production with several web processes must
  configure a shared cache (Redis or the database cache), or each process counts on its own.

Debtor actions are written with ``by=None`` (no staff user acted) and each one lands in the
client's timeline and in the collector's worklist.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import zoneinfo
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core import signing
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts import services as ledger
from accounts.models import ZERO, Client, Interaction, Invoice
from accounts.rules import COLLECTIBLE, open_invoice_q
from accounts.services import ensure_can_work
from accounts.utils import money_str
from cobranza.models import (
    CollectorTask,
    Commitment,
    CommitmentKind,
    Dispute,
    SelfServiceAccess,
    TaskKind,
)
from cobranza.rules import open_commitment_q
from cobranza.workspace.commitments import commitment_create
from cobranza.workspace.disputes import dispute_open

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
        access.revoked_at = timezone.now()
        access.revoked_by = by if by is not None and by.is_authenticated else None
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


def _hit(key: str) -> int:
    # Fixed window: the first hit creates the counter with the window as its lifetime.
    cache.add(key, 0, timeout=rate_window())
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=rate_window())
        return 1


def rate_limited(*, ip: str, token: str) -> bool:
    """Count one request for this IP and this token; True once either is over the limit.
    Tokens are hashed so the cache never holds a usable link."""
    token_key = hashlib.sha256(token.encode()).hexdigest()[:40]
    by_ip = _hit(f"selfservice:rl:ip:{ip}")
    by_token = _hit(f"selfservice:rl:token:{token_key}")
    limit = getattr(settings, "SELF_SERVICE_RATE_LIMIT", RATE_LIMIT)
    return by_ip > limit or by_token > limit


# --- reads -----------------------------------------------------------------------------------


@dataclass
class StatementLine:
    invoice: Invoice
    days_overdue: int


@dataclass
class CurrencyTotal:
    currency: str
    total: Decimal = ZERO
    overdue: Decimal = ZERO
    count: int = 0


@dataclass
class Statement:
    client: Client
    today: dt.date
    lines: list[StatementLine] = field(default_factory=list)
    totals: list[CurrencyTotal] = field(default_factory=list)


def client_today(client: Client) -> dt.date:
    try:
        tz = zoneinfo.ZoneInfo(client.time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        tz = None
    return timezone.localdate(timezone=tz)


def statement_of(client: Client) -> Statement:
    """The client's invoices still owed (disputed ones included, marked), oldest due first,
    with days overdue in the client's own time zone and totals per currency."""
    today = client_today(client)
    invoices = client.invoices.filter(COLLECTIBLE).order_by("due_date", "number")
    result = Statement(client=client, today=today)
    totals: dict[str, CurrencyTotal] = {}
    for invoice in invoices:
        days = max((today - invoice.due_date).days, 0)
        result.lines.append(StatementLine(invoice=invoice, days_overdue=days))
        total = totals.setdefault(invoice.currency, CurrencyTotal(currency=invoice.currency))
        total.total += invoice.open_balance
        total.count += 1
        if days > 0:
            total.overdue += invoice.open_balance
    result.totals = [totals[c] for c in sorted(totals)]
    return result


def open_currencies(client: Client) -> list[str]:
    return sorted(set(client.invoices.filter(open_invoice_q()).values_list("currency", flat=True)))


# --- debtor actions (by=None: the debtor, not a staff user) ----------------------------------


def _follow_up(*, client: Client, title: str, commitment: Commitment | None = None) -> CollectorTask:
    return CollectorTask.objects.create(
        client=client,
        kind=TaskKind.FOLLOW_UP,
        commitment=commitment,
        title=title[:255],
        assigned_to=client.collector,
        due_on=timezone.localdate(),
    )


def promise_create(*, client: Client, pay_on: dt.date, amount: Decimal, currency: str) -> Commitment:
    """The debtor promises to pay ``amount`` on ``pay_on`` for their open invoices in
    ``currency`` (those not already under a commitment). A follow-up task tells the collector."""
    invoices = list(
        client.invoices.filter(open_invoice_q(), currency=currency)
        .exclude(open_commitment_q())
        .order_by("due_date", "id")
    )
    if not invoices and client.invoices.filter(open_commitment_q(), currency=currency).exists():
        raise ValidationError(
            {"amount": _("Ya hay un compromiso de pago vigente para sus facturas en %(c)s.") % {"c": currency}}
        )
    with transaction.atomic():
        commitment = commitment_create(
            by=None,
            client=client,
            kind=CommitmentKind.PROMISE,
            installments=[(pay_on, amount)],
            invoices=invoices,
            notes=_("Registrada por el cliente en el portal de autoservicio."),
        )
        _follow_up(
            client=client,
            commitment=commitment,
            title=_("Promesa desde el portal: %(amount)s para el %(date)s")
            % {"amount": money_str(amount, currency), "date": date_format(pay_on, "SHORT_DATE_FORMAT")},
        )
    return commitment


def plan_request(*, client: Client, installments: int, comment: str) -> Interaction:
    """The debtor asks for a payment plan. Nothing is agreed automatically: the collector gets
    a task to answer and the request goes to the timeline."""
    comment = comment.strip()
    open_invoices = list(client.invoices.filter(open_invoice_q()))
    summary = ngettext(
        "Solicita un plan de pagos de %(n)s cuota (portal de autoservicio)",
        "Solicita un plan de pagos de %(n)s cuotas (portal de autoservicio)",
        installments,
    ) % {"n": installments}
    with transaction.atomic():
        entry = ledger.interaction_log(
            by=None,
            client=client,
            kind=Interaction.Kind.NOTE,
            direction=Interaction.Direction.INBOUND,
            outcome=Interaction.Outcome.PLAN_REQUEST,
            summary=summary,
            body=comment,
            invoices=open_invoices,
        )
        _follow_up(
            client=client,
            title=ngettext(
                "Responder la solicitud de plan de pagos de %(n)s cuota",
                "Responder la solicitud de plan de pagos de %(n)s cuotas",
                installments,
            )
            % {"n": installments},
        )
    return entry


def problem_report(*, client: Client, invoice: Invoice, reason: str, description: str) -> Dispute:
    """The debtor reports a problem with one of their invoices: a dispute is opened (which
    logs it and gives its owner a task) and the invoice leaves the reminder ladder."""
    return dispute_open(
        by=None,
        client=client,
        invoices=[invoice],
        reason=reason,
        description=(
            description.strip() + "\n\n" + _("(Reportado por el cliente en el portal de autoservicio.)")
            if description.strip()
            else ""
        ),
    )
