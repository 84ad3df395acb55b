"""The debtor's self-service page: what it records, and what staff do about it. What the page
shows is ``cobranza.portal.selectors``; the link that opens it (signing, expiry, revocation,
rate limit) is ``cobranza.portal.links``; the messages it sends, ``cobranza.portal.jobs``.

Debtor actions are written with ``by=None`` (no staff user acted) and each one lands in the
client's timeline and in the collector's worklist.

**Limits** (docs/domain.md#portal-limits): a promise or plan inside the limits of the client's
policy is agreed at once (a commitment: reminders pause for its invoices); outside them it is
a ``PortalProposal`` — nothing agreed, reminders go on — with a task for the collector, who
approves it (the commitment is then created exactly as if it had been accepted) or rejects
it. The debtor gets an email at each step when the client has an email contact.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from accounts import clock
from accounts import services as ledger
from accounts.models import ZERO, Client, Interaction, Invoice
from accounts.rules import is_open_invoice, open_invoice_q
from accounts.services import ensure_can_work
from accounts.utils import actor, money_str
from cobranza import texts
from cobranza.engine.contacts import choose_contact
from cobranza.models import (
    CollectorTask,
    Commitment,
    CommitmentKind,
    Dispute,
    PortalMessage,
    PortalMessageKind,
    PortalProposal,
    ProposalStatus,
    SelfServiceAccess,
    TaskKind,
    TaskStatus,
)
from cobranza.portal import jobs, links, selectors
from cobranza.rules import open_commitment_q
from cobranza.workspace.forms import Frequency, plan_schedule
from cobranza.workspace.services import commitment_create, dispute_open


def _portal_note() -> str:
    return _("Registrada por el cliente en el portal de autoservicio.")


# How a debtor may space a plan's payments: (frequency, every_days) for ``plan_schedule``.
PLAN_SPACING = {
    "monthly": (Frequency.MONTHLY, 30),
    "biweekly": (Frequency.DAYS, 14),
    "weekly": (Frequency.DAYS, 7),
}


# --- debtor actions (by=None: the debtor, not a staff user) ----------------------------------


def _follow_up(*, client: Client, title: str, commitment: Commitment | None = None) -> CollectorTask:
    return CollectorTask.objects.create(
        client=client,
        kind=TaskKind.FOLLOW_UP,
        commitment=commitment,
        **texts.columns("title", title),
        assigned_to=client.collector,
        due_on=clock.localdate(),
    )


def _portal_entry(*, client: Client, summary: str, outcome: str = "", body: str = "", invoices=()) -> Interaction:
    """A debtor's action on the portal, in their timeline (inbound: the debtor spoke)."""
    return ledger.interaction_log(
        by=None,
        client=client,
        kind=Interaction.Kind.NOTE,
        direction=Interaction.Direction.INBOUND,
        outcome=outcome,
        summary=summary,
        body=body,
        invoices=list(invoices),
    )


def _free_invoices(client: Client, currency: str) -> list[Invoice]:
    """The client's open invoices in ``currency`` not already under a commitment; a field
    error when there are none because a commitment or a proposal already covers them."""
    if PortalProposal.objects.filter(client=client, currency=currency, status=ProposalStatus.PENDING).exists():
        raise ValidationError(
            {
                "__all__": _(
                    "Ya tiene una propuesta pendiente de aprobación para sus facturas en %(c)s: su gestor le "
                    "responderá pronto."
                )
                % {"c": currency}
            }
        )
    invoices = list(
        client.invoices.filter(open_invoice_q(), currency=currency)
        .exclude(open_commitment_q())
        .order_by("due_date", "id")
    )
    if not invoices and client.invoices.filter(open_commitment_q(), currency=currency).exists():
        raise ValidationError(
            {"__all__": _("Ya hay un compromiso de pago vigente para sus facturas en %(c)s.") % {"c": currency}}
        )
    if not invoices:
        raise ValidationError({"__all__": _("No tiene facturas pendientes en %(c)s.") % {"c": currency}})
    return invoices


def _owed(invoices: Sequence[Invoice]) -> Decimal:
    return sum((inv.open_balance for inv in invoices), ZERO)


def _dates_text(rows: Sequence[tuple[dt.date, Decimal]], currency: str) -> str:
    return ", ".join(
        f"{money_str(amount, currency)} ({date_format(when, 'SHORT_DATE_FORMAT')})" for when, amount in rows
    )


def promise_create(*, client: Client, pay_on: dt.date, amount: Decimal, currency: str) -> Commitment | PortalProposal:
    """The debtor promises to pay ``amount`` on ``pay_on`` for their open invoices in
    ``currency`` (those not already under a commitment). Inside the limits of the client's
    policy it is a promise at once (a follow-up task tells the collector); outside, a proposal
    waiting for the collector's approval."""
    invoices = _free_invoices(client, currency)
    owed = _owed(invoices)
    # The same rule commitment_create applies (a collector approving it would hit it too).
    if amount > owed:
        raise ValidationError(
            {
                "amount": _("Se comprometen %(total)s pero sus facturas suman %(owed)s.")
                % {"total": money_str(amount, currency), "owed": money_str(owed, currency)}
            }
        )
    today = selectors.client_today(client)
    breaches = selectors.promise_breaches(
        selectors.limits_for(client),
        today=today,
        pay_on=pay_on,
        amount=amount,
        overdue=selectors.overdue_of(invoices, today),
        currency=currency,
    )
    rows = [(pay_on, amount)]
    what = texts.PORTAL_PROMISE(amount=texts.money(amount, currency), date=texts.date(pay_on))
    if breaches:
        return _propose(
            client=client,
            kind=CommitmentKind.PROMISE,
            currency=currency,
            rows=rows,
            invoices=invoices,
            comment="",
            breaches=breaches,
            what=what,
        )
    with transaction.atomic():
        commitment = commitment_create(
            by=None,
            client=client,
            kind=CommitmentKind.PROMISE,
            installments=rows,
            invoices=invoices,
            notes=_portal_note(),
        )
        _portal_entry(
            client=client,
            outcome=Interaction.Outcome.PROMISE,
            summary=texts.PORTAL_ACCEPTED_F(what=what),
            invoices=invoices,
        )
        _follow_up(
            client=client,
            commitment=commitment,
            title=texts.PORTAL_PROMISE_TASK(amount=texts.money(amount, currency), date=texts.date(pay_on)),
        )
        _confirm(client=client, kind=PortalMessageKind.ACCEPTED, commitment=commitment)
    return commitment


def plan_request(
    *,
    client: Client,
    installments: int,
    comment: str,
    first_on: dt.date,
    spacing: str = "monthly",
    currency: str | None = None,
) -> Commitment | PortalProposal:
    """The debtor asks to pay what they owe in ``currency`` in ``installments`` payments from
    ``first_on``, spaced by ``spacing`` (``PLAN_SPACING``). Inside the limits of the client's
    policy the plan is agreed at once; outside, it waits for the collector's approval."""
    currency = currency or client.currency
    comment = (comment or "").strip()
    if spacing not in PLAN_SPACING:
        raise ValidationError({"spacing": _("Elija cada cuánto pagaría.")})
    invoices = _free_invoices(client, currency)
    frequency, every_days = PLAN_SPACING[spacing]
    rows = plan_schedule(
        total=_owed(invoices), count=installments, first_on=first_on, frequency=frequency, every_days=every_days
    )
    today = selectors.client_today(client)
    breaches = selectors.plan_breaches(selectors.limits_for(client), today=today, count=installments, first_on=first_on)
    what = texts.PORTAL_PLAN(n=installments, dates=_dates_text(rows, currency))
    if breaches:
        return _propose(
            client=client,
            kind=CommitmentKind.PLAN,
            currency=currency,
            rows=rows,
            invoices=invoices,
            comment=comment,
            breaches=breaches,
            what=what,
        )
    with transaction.atomic():
        commitment = commitment_create(
            by=None,
            client=client,
            kind=CommitmentKind.PLAN,
            installments=rows,
            invoices=invoices,
            notes=_portal_note() + (f"\n{comment}" if comment else ""),
        )
        _portal_entry(
            client=client,
            outcome=Interaction.Outcome.PLAN_REQUEST,
            summary=texts.PORTAL_ACCEPTED_M(what=what),
            body=comment,
            invoices=invoices,
        )
        _follow_up(
            client=client,
            commitment=commitment,
            title=texts.PORTAL_PLAN_TASK(n=installments),
        )
        _confirm(client=client, kind=PortalMessageKind.ACCEPTED, commitment=commitment)
    return commitment


def _propose(
    *,
    client: Client,
    kind: str,
    currency: str,
    rows: Sequence[tuple[dt.date, Decimal]],
    invoices: Sequence[Invoice],
    comment: str,
    breaches: Sequence[str],
    what: str,
) -> PortalProposal:
    """Outside the limits: a proposal for the collector; reminders go on meanwhile."""
    reasons = "\n".join(breaches)
    try:
        with transaction.atomic():
            proposal = PortalProposal.objects.create(
                client=client,
                kind=kind,
                currency=currency,
                total=sum((amount for _when, amount in rows), ZERO),
                schedule=[[when.isoformat(), str(amount)] for when, amount in rows],
                comment=comment,
                reasons=reasons,
            )
            proposal.invoices.set(invoices)
            proposal.task = CollectorTask.objects.create(
                client=client,
                kind=TaskKind.PORTAL_PROPOSAL,
                **texts.columns("title", texts.PORTAL_DECIDE_TASK(what=what)),
                assigned_to=client.collector,
                due_on=clock.localdate(),
            )
            proposal.save(update_fields=["task"])
            _portal_entry(
                client=client,
                outcome=Interaction.Outcome.PROMISE
                if kind == CommitmentKind.PROMISE
                else Interaction.Outcome.PLAN_REQUEST,
                summary=texts.PORTAL_PENDING(what=what),
                body=_("Fuera de los límites de su política:") + "\n" + reasons + (f"\n\n{comment}" if comment else ""),
                invoices=invoices,
            )
            _confirm(client=client, kind=PortalMessageKind.REQUESTED, proposal=proposal)
    except IntegrityError as exc:
        # Two proposals at once for the same currency: the unique constraint keeps one.
        raise ValidationError(
            {
                "__all__": _("Ya tiene una propuesta pendiente de aprobación para sus facturas en %(c)s.")
                % {"c": currency}
            }
        ) from exc
    return proposal


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


def visit_record(*, client: Client) -> bool:
    """A portal visit, in the timeline once per day of the client (the first visit of the
    day); True when this one was logged. Race-free: the day moves with a conditional UPDATE."""
    today = selectors.client_today(client)
    SelfServiceAccess.objects.get_or_create(client=client)
    with transaction.atomic():
        moved = (
            SelfServiceAccess.objects.filter(client=client)
            .exclude(last_visit_on__gte=today)
            .update(last_visit_on=today)
        )
        if moved:
            ledger.interaction_log(
                by=None,
                client=client,
                kind=Interaction.Kind.SYSTEM,
                direction=Interaction.Direction.INBOUND,
                summary=texts.PORTAL_VISITED(),
            )
    return bool(moved)


def statement_downloaded(*, client: Client) -> Interaction:
    return ledger.interaction_log(
        by=None,
        client=client,
        kind=Interaction.Kind.SYSTEM,
        direction=Interaction.Direction.INBOUND,
        summary=texts.PORTAL_STATEMENT(),
    )


# --- staff: proposals ------------------------------------------------------------------------


def _close_task(proposal: PortalProposal, by) -> None:
    if proposal.task_id:
        CollectorTask.objects.filter(pk=proposal.task_id, status=TaskStatus.OPEN).update(
            status=TaskStatus.DONE, completed_at=clock.now(), completed_by=actor(by)
        )


def _locked_pending(proposal: PortalProposal) -> PortalProposal:
    locked = PortalProposal.objects.select_for_update().select_related("client").get(pk=proposal.pk)
    if locked.status != ProposalStatus.PENDING:
        raise ValidationError(_("La propuesta ya fue %(status)s.") % {"status": locked.get_status_display().lower()})
    return locked


def proposal_approve(*, by: AbstractBaseUser | None, proposal: PortalProposal) -> Commitment:
    """The collector accepts the debtor's proposal: the promise or plan is created exactly as
    if the portal had accepted it (reminders pause for its invoices) and the debtor is told."""
    ensure_can_work(by, proposal.client)
    with transaction.atomic():
        proposal = _locked_pending(proposal)
        client = proposal.client
        invoices = [inv for inv in proposal.invoices.order_by("due_date", "id") if is_open_invoice(inv)]
        commitment = commitment_create(
            by=by,
            client=client,
            kind=proposal.kind,
            installments=proposal.rows(),
            invoices=invoices,
            notes=_portal_note() + (f"\n{proposal.comment}" if proposal.comment else ""),
        )
        commitment.approved_by = actor(by)
        commitment.save(update_fields=["approved_by"])
        proposal.status = ProposalStatus.APPROVED
        proposal.commitment = commitment
        proposal.decided_at = clock.now()
        proposal.decided_by = actor(by)
        proposal.save(update_fields=["status", "commitment", "decided_at", "decided_by"])
        _close_task(proposal, by)
        ledger.interaction_log(
            by=by,
            client=client,
            kind=Interaction.Kind.SYSTEM,
            direction=Interaction.Direction.INTERNAL,
            summary=texts.PROPOSAL_APPROVED(**_proposal_words(proposal)),
            invoices=invoices,
        )
        _confirm(client=client, kind=PortalMessageKind.APPROVED, proposal=proposal, commitment=commitment)
    return commitment


def proposal_reject(*, by: AbstractBaseUser | None, proposal: PortalProposal, note: str = "") -> PortalProposal:
    """The collector turns the proposal down; the debtor is told (with ``note``, when given)
    and reminders simply go on."""
    ensure_can_work(by, proposal.client)
    note = (note or "").strip()
    if len(note) > 2000:
        raise ValidationError({"note": _("Escriba como máximo 2000 caracteres.")})
    with transaction.atomic():
        proposal = _locked_pending(proposal)
        proposal.status = ProposalStatus.REJECTED
        proposal.decided_at = clock.now()
        proposal.decided_by = actor(by)
        proposal.decision_note = note
        proposal.save(update_fields=["status", "decided_at", "decided_by", "decision_note"])
        _close_task(proposal, by)
        ledger.interaction_log(
            by=by,
            client=proposal.client,
            kind=Interaction.Kind.SYSTEM,
            direction=Interaction.Direction.INTERNAL,
            summary=texts.PROPOSAL_REJECTED(**_proposal_words(proposal)),
            body=note,
        )
        _confirm(client=proposal.client, kind=PortalMessageKind.REJECTED, proposal=proposal)
    return proposal


def _proposal_words(proposal: PortalProposal) -> dict:
    return {
        "kind": texts.choice(CommitmentKind, proposal.kind, lower=True),
        "total": texts.money(proposal.total, proposal.currency),
    }


# --- messages: confirmations and the link ----------------------------------------------------


def _confirm(
    *, client: Client, kind: str, proposal: PortalProposal | None = None, commitment: Commitment | None = None
) -> PortalMessage | None:
    """An email confirming what happened, when the client has an email contact that
    automated messages may reach (the sender re-checks it, and the contact rules, at send
    time). Once per event."""
    if choose_contact(client, "email") is None:
        return None
    subject = proposal.pk if proposal is not None else commitment.pk
    key = f"{kind}:{'p' if proposal is not None else 'c'}{subject}"
    message = PortalMessage.objects.create(
        client=client, kind=kind, channel="email", proposal=proposal, commitment=commitment, dedupe_key=key
    )
    jobs.enqueue_after_commit(message.pk)
    return message


SEND_CHANNELS = ("email", "sms", "whatsapp")


def link_send(
    *, by: AbstractBaseUser | None, client: Client, channel: str, key: str = "", reissue: bool = False
) -> PortalMessage:
    """Staff send the client their portal link now, by ``channel``, through the normal sending
    path (contact choice and opt-outs, contact rules, the timeline). ``key`` (the form's own
    token) makes a repeated submission one message; ``reissue`` first revokes every link sent
    before (``links.revoke``), so only the new one works."""
    ensure_can_work(by, client)
    if channel not in SEND_CHANNELS:
        raise ValidationError({"channel": _("Elija correo, SMS o WhatsApp.")})
    if choose_contact(client, channel) is None:
        raise ValidationError(
            {"channel": _("Ningún contacto del cliente acepta mensajes por este medio (sin dato o dado de baja).")}
        )
    key = f"link:{(key or uuid.uuid4().hex)[:60]}"
    if PortalMessage.objects.filter(client=client, dedupe_key=key).exists():
        raise ValidationError({"__all__": _("Este envío ya se hizo.")})
    try:
        with transaction.atomic():
            if reissue:
                links.revoke(by=by, client=client)
            message = PortalMessage.objects.create(
                client=client, kind=PortalMessageKind.LINK, channel=channel, dedupe_key=key, created_by=actor(by)
            )
            jobs.enqueue_after_commit(message.pk)
    except IntegrityError as exc:
        raise ValidationError({"__all__": _("Este envío ya se hizo.")}) from exc
    return message
