"""The debtor's self-service page: what it records. What the page shows is
``cobranza.portal.selectors``; the link that opens it (signing, expiry, revocation, rate limit)
is ``cobranza.portal.links``.

Debtor actions are written with ``by=None`` (no staff user acted) and each one lands in the
client's timeline and in the collector's worklist.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts import clock
from accounts import services as ledger
from accounts.models import Client, Interaction, Invoice
from accounts.rules import open_invoice_q
from accounts.utils import money_str
from cobranza.models import (
    CollectorTask,
    Commitment,
    CommitmentKind,
    Dispute,
    TaskKind,
)
from cobranza.rules import open_commitment_q
from cobranza.workspace.services import commitment_create, dispute_open

# --- debtor actions (by=None: the debtor, not a staff user) ----------------------------------


def _follow_up(*, client: Client, title: str, commitment: Commitment | None = None) -> CollectorTask:
    return CollectorTask.objects.create(
        client=client,
        kind=TaskKind.FOLLOW_UP,
        commitment=commitment,
        title=title[:255],
        assigned_to=client.collector,
        due_on=clock.localdate(),
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
