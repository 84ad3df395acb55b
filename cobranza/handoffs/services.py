"""Hand-offs: a client's debt sent to a collection agency or to legal (docs/domain.md#hand-offs).

Writes (``handoff_open``, ``handoff_update``, ``handoff_close``, ``open_for_notice``) follow
``accounts.services``: keyword-only arguments, the acting user as ``by`` (``None`` is the
system: the dispatcher opening a hand-off for an approved ladder step), one transaction,
``ValidationError`` with field names. Managers open and close; the client's collector may add
updates and record recoveries. Every step is written to the client's timeline. The reads
(lists, details, the case file's contents) are ``cobranza.handoffs.selectors``.

Rules worth knowing:

- **One open hand-off per client and kind** (database constraint ``handoff_one_open_per_kind``,
  surfaced as a ``ValidationError`` on ``kind``). A hand-off therefore carries **one currency**:
  invoices in several currencies are refused with the list of currencies — the manager sends
  the invoices of one currency; the others stay in internal collection. The dispatcher's
  ``open_for_notice`` cannot ask, so it takes the client's own currency (else the currency of
  the oldest invoice) and says in the notes which invoices stayed behind.
- **Default invoices** are the client's *overdue* invoices still owed (open or partly paid;
  disputed ones are left out: a complaint is resolved, not sent to an agency). Invoices not yet
  due can be added explicitly.
- **The case file** (*expediente*) is generated when the hand-off opens, a snapshot of that
  day: a PDF (client, contacts including guarantors, invoices with days overdue, payments, the
  whole timeline) and a CSV (one row per invoice, then one per timeline entry, told apart by
  the first column) under ``MEDIA_ROOT/expedientes/``. ``case_file`` holds the PDF's path
  relative to ``MEDIA_ROOT``; the CSV sits beside it. They are served only through the
  login-protected ``cobranza:handoff_file`` view, never as public media.
- **A recovery is a real payment** (``accounts.services.payment_record``, method transfer, in
  the hand-off's currency), applied to the hand-off's invoices oldest due first; anything above
  their balance stays as client credit. A reference recorded twice records one payment.
- **Closing**: *returned* puts the client back in internal collection; *recovered* does too, or
  back to active when nothing is owed any more; *closed* (nothing recovered) leaves the status
  for the manager to decide (write-off, legal). While the client has another open hand-off the
  status follows that one (legal wins over agency).
"""

from __future__ import annotations

import csv
import datetime as dt
import logging
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts import clock
from accounts import services as ledger
from accounts import texts as ledger_texts
from accounts.models import ZERO, Client, Interaction, Invoice, Payment
from accounts.rules import COLLECTIBLE, OPEN_STATUSES, is_open_invoice, open_invoice_q
from accounts.services import AllocationRequest, ensure_can_work, ensure_manager, to_money
from accounts.utils import actor, money_str
from cobranza import texts
from cobranza.exports import inert_cell
from cobranza.handoffs.selectors import CASE_FILES_DIR, _case_file_context, case_file_html, default_invoices
from cobranza.models import HandOff, HandOffKind, HandOffStatus, HandOffUpdate, Notice, StepChannel

log = logging.getLogger(__name__)

# Invoices that can be sent: still owed and not under a dispute.
SENDABLE_STATUSES = OPEN_STATUSES
STATUS_FOR_KIND = {HandOffKind.AGENCY: Client.Status.AGENCY, HandOffKind.LEGAL: Client.Status.LEGAL}
CLOSING_STATUSES = (HandOffStatus.RECOVERED, HandOffStatus.CLOSED, HandOffStatus.RETURNED)
KIND_FOR_CHANNEL = {StepChannel.AGENCY: HandOffKind.AGENCY, StepChannel.LEGAL: HandOffKind.LEGAL}


def case_label(handoff: HandOff) -> str:
    """ "Agencia de cobranza «Despacho Pérez»": how the timeline names a hand-off."""
    label = str(HandOffKind(handoff.kind).label)
    return f"{label} «{handoff.agency}»" if handoff.agency else label


def _case(handoff: HandOff) -> texts.Text:
    """``case_label`` as a text, the kind in the reader's language (docs/domain.md#texts)."""
    kind = texts.choice(HandOffKind, handoff.kind)
    return texts.join([kind, " «", handoff.agency, "»"], sep="") if handoff.agency else kind


def _timeline(*, by, handoff: HandOff, summary: str, body: str = "", invoices: Iterable[Invoice] = ()) -> Interaction:
    return ledger.interaction_log(
        by=by,
        client=handoff.client,
        kind=Interaction.Kind.SYSTEM,
        direction=Interaction.Direction.INTERNAL,
        summary=summary,
        body=body,
        invoices=list(invoices),
    )


def _status_for_open(client: Client, *, excluding: int | None = None) -> str | None:
    """The client status its open hand-offs call for (legal wins over agency), or None."""
    kinds = set(
        HandOff.objects.filter(client=client, status=HandOffStatus.OPEN)
        .exclude(pk=excluding)
        .values_list("kind", flat=True)
    )
    if HandOffKind.LEGAL in kinds:
        return Client.Status.LEGAL
    if HandOffKind.AGENCY in kinds:
        return Client.Status.AGENCY
    return None


# --- writing the case file (what goes in it: selectors) -------------------------------------


def _case_file_stem(handoff: HandOff) -> str:
    return f"{CASE_FILES_DIR}/expediente-{handoff.pk}-{handoff.opened_on:%Y%m%d}"


CSV_HEADER = (
    "registro",
    "folio",
    "emision",
    "vencimiento",
    "dias_atraso",
    "moneda",
    "importe",
    "pagado",
    "saldo",
    "estado",
    "fecha",
    "tipo",
    "direccion",
    "resultado",
    "contacto",
    "autor",
    "resumen",
    "detalle",
)


def _csv_rows(context: dict) -> list[list[str]]:
    """Machine-readable: ISO dates, dot decimals, stable column names (an agency's import
    script should not depend on our UI language); the human labels go in the PDF."""
    rows: list[list[str]] = []
    # First, the creditor (the business that is owed): name in "resumen", legal name and tax
    # id in "detalle".
    business = context["business"]
    legal = " · ".join(part for part in (business.legal_name, business.tax_id) if part)
    rows.append(["acreedor", *[""] * 15, business.trade_name, legal])
    for row in context["invoices"]:
        inv = row.invoice
        rows.append(
            [
                "factura",
                inv.number,
                inv.issue_date.isoformat(),
                inv.due_date.isoformat(),
                str(row.days_overdue),
                inv.currency,
                f"{inv.amount:.2f}",
                f"{inv.amount_paid:.2f}",
                f"{inv.open_balance:.2f}",
                inv.status,
                *[""] * 8,
            ]
        )
    for entry in context["timeline"]:
        author = (entry.author.get_full_name() or entry.author.get_username()) if entry.author else ""
        rows.append(
            [
                "historial",
                " ".join(inv.number for inv in entry.invoices.all()),
                *[""] * 8,
                timezone.localtime(entry.occurred_at).isoformat(timespec="minutes"),
                entry.kind,
                entry.direction,
                entry.outcome,
                entry.contact.name if entry.contact else "",
                author,
                entry.summary,
                entry.body,
            ]
        )
    return rows


def _write_atomically(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".part")
    try:
        write(tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def _generate_case_file(handoff: HandOff) -> str:
    """Write the PDF and the CSV; returns the PDF's path relative to MEDIA_ROOT."""
    from weasyprint import HTML  # imported here: loading pango costs ~0.3 s at start-up

    context = _case_file_context(handoff)
    stem = _case_file_stem(handoff)
    pdf_path = Path(settings.MEDIA_ROOT) / f"{stem}.pdf"
    csv_path = Path(settings.MEDIA_ROOT) / f"{stem}.csv"
    pdf_path.parent.mkdir(parents=True, exist_ok=True)
    html = case_file_html(handoff, context)

    def write_csv(tmp: Path) -> None:
        # UTF-8 with a BOM: spreadsheet programs then read the accents right.
        with tmp.open("w", encoding="utf-8-sig", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(CSV_HEADER)
            # Sent to an outside agency, opened in a spreadsheet: every cell inert.
            writer.writerows([inert_cell(cell) for cell in row] for row in _csv_rows(context))

    try:
        _write_atomically(pdf_path, lambda tmp: HTML(string=html).write_pdf(tmp))
        _write_atomically(csv_path, write_csv)
    except Exception as exc:
        pdf_path.unlink(missing_ok=True)
        csv_path.unlink(missing_ok=True)
        log.exception("case file for hand-off %s failed", handoff.pk)
        raise ValidationError(_("No se pudo generar el expediente: %(error)s") % {"error": exc}) from exc
    return f"{stem}.pdf"


# --- writes ------------------------------------------------------------------------------------


def _check_invoices(client: Client, invoices: list[Invoice]) -> None:
    errors = []
    for inv in invoices:
        if inv.client_id != client.pk:
            errors.append(_("La factura %(n)s no es de este cliente.") % {"n": inv.number})
        elif inv.status == Invoice.Status.DISPUTED:
            errors.append(_("La factura %(n)s está en disputa: resuélvala antes de enviarla.") % {"n": inv.number})
        elif not is_open_invoice(inv):
            errors.append(_("La factura %(n)s ya no tiene saldo pendiente.") % {"n": inv.number})
    if errors:
        raise ValidationError({"invoices": errors})
    if not invoices:
        raise ValidationError({"invoices": _("El cliente no tiene facturas vencidas pendientes que enviar.")})
    currencies = sorted({inv.currency for inv in invoices})
    if len(currencies) > 1:
        raise ValidationError(
            {
                "invoices": _(
                    "Las facturas están en varias monedas (%(currencies)s). Un envío lleva una sola moneda: "
                    "elija las facturas de una de ellas."
                )
                % {"currencies": ", ".join(currencies)}
            }
        )


def handoff_open(
    *,
    by: AbstractBaseUser | None,
    client: Client,
    kind: str,
    invoices: Iterable[Invoice] | None = None,
    agency: str = "",
    notes: str = "",
) -> HandOff:
    """Send ``client``'s invoices to an agency or to legal: record the hand-off, move the
    client to the matching status, write the timeline and generate the case file."""
    ensure_manager(by)
    if kind not in HandOffKind.values:
        raise ValidationError({"kind": _("Elija agencia de cobranza o vía judicial.")})
    today = clock.localdate()
    with transaction.atomic():
        # Serialises two openings for one client (the constraint is the last word anyway), and
        # refreshes the caller's object, which the status change below updates in place.
        client.status = Client.objects.select_for_update().values_list("status", flat=True).get(pk=client.pk)
        existing = HandOff.objects.filter(client=client, kind=kind, status=HandOffStatus.OPEN).first()
        if existing is not None:
            raise ValidationError({"kind": _already_open(existing)})
        if invoices is None:
            chosen = list(default_invoices(client, today=today).select_for_update())
        else:
            ids = [inv.pk for inv in invoices]
            if not ids:
                raise ValidationError({"invoices": _("Elija al menos una factura.")})
            # Re-read under lock: balances and statuses as they are now, not as the form saw them.
            chosen = list(Invoice.objects.select_for_update().filter(pk__in=ids).order_by("due_date", "id"))
            if len(chosen) != len(set(ids)):
                raise ValidationError({"invoices": _("Alguna factura elegida ya no existe.")})
        _check_invoices(client, chosen)
        handoff = HandOff(
            client=client,
            kind=kind,
            agency=agency.strip(),
            status=HandOffStatus.OPEN,
            opened_on=today,
            opened_by=actor(by),
            currency=chosen[0].currency,
            amount=sum((inv.open_balance for inv in chosen), ZERO),
            notes=notes.strip(),
        )
        # opened_by is null (not blank) for the system: nothing to validate there.
        handoff.full_clean(exclude=["case_file", "invoices", "opened_by"], validate_constraints=False)
        try:
            with transaction.atomic():
                handoff.save()
        except IntegrityError as exc:
            # Another request opened one between our check and the insert.
            existing = HandOff.objects.filter(client=client, kind=kind, status=HandOffStatus.OPEN).first()
            raise ValidationError({"kind": _already_open(existing)}) from exc
        handoff.invoices.set(chosen)

        new_status = _status_for_open(client)
        if new_status and client.status != new_status:
            ledger.client_update(by=by, client=client, status=new_status)
        handoff.client = client
        lines = [
            f"{inv.number} · {date_format(inv.due_date, 'SHORT_DATE_FORMAT')} · "
            f"{money_str(inv.open_balance, inv.currency)} · "
            + ngettext("%(days)d día de atraso", "%(days)d días de atraso", inv.days_overdue(today))
            % {"days": inv.days_overdue(today)}
            for inv in chosen
        ]
        if handoff.notes:
            lines = [handoff.notes, "", *lines]
        _timeline(
            by=by,
            handoff=handoff,
            summary=texts.HANDOFF_SENT(
                case=_case(handoff), count=len(chosen), amount=texts.money(handoff.amount, handoff.currency)
            ),
            body="\n".join(lines),
            invoices=chosen,
        )
        handoff.case_file = _generate_case_file(handoff)
        handoff.save(update_fields=["case_file"])
    return handoff


def _already_open(existing: HandOff | None) -> str:
    if existing is None:
        return _("Este cliente ya tiene un envío abierto de ese tipo.")
    return _("Este cliente ya tiene un envío abierto a %(kind)s desde el %(date)s: ciérrelo antes de abrir otro.") % {
        "kind": str(HandOffKind(existing.kind).label).lower(),
        "date": date_format(existing.opened_on, "SHORT_DATE_FORMAT"),
    }


def _lock_open(handoff: HandOff) -> HandOff:
    locked = HandOff.objects.select_for_update().select_related("client").get(pk=handoff.pk)
    if locked.status != HandOffStatus.OPEN:
        raise ValidationError(
            _("Este envío ya está cerrado (%(status)s).") % {"status": locked.get_status_display().lower()}
        )
    return locked


def handoff_update(
    *,
    by: AbstractBaseUser | None,
    handoff: HandOff,
    on: dt.date,
    note: str = "",
    recovered: Decimal = ZERO,
    reference: str = "",
) -> HandOffUpdate:
    """Progress from the agency or the lawyer: a note, money recovered, or both. Money
    recovered is recorded as a payment of the client (see the module docstring)."""
    ensure_can_work(by, handoff.client)
    note = (note or "").strip()
    reference = (reference or "").strip()
    recovered = to_money(recovered or 0)
    today = clock.localdate()
    errors: dict[str, str] = {}
    if recovered < 0:
        errors["recovered"] = _("El importe recuperado no puede ser negativo.")
    elif recovered == 0 and not note:
        errors["note"] = _("Escriba una nota o registre un importe recuperado.")
    if on > today:
        errors["on"] = _("La fecha no puede estar en el futuro.")
    elif on < handoff.opened_on:
        errors["on"] = _("La fecha es anterior al envío (%(date)s).") % {
            "date": date_format(handoff.opened_on, "SHORT_DATE_FORMAT")
        }
    if reference and recovered == 0:
        errors["reference"] = _("La referencia es del pago: indique también el importe recuperado.")
    if errors:
        raise ValidationError(errors)

    with transaction.atomic():
        handoff = _lock_open(handoff)
        payment = None
        touched: list[Invoice] = []
        if recovered > 0:
            payment = _record_recovery(by=by, handoff=handoff, on=on, amount=recovered, reference=reference, note=note)
            if not payment.created:
                # The same transfer reported twice: one payment, one update.
                earlier = HandOffUpdate.objects.filter(handoff=handoff, payment=payment).first()
                if earlier is not None:
                    return earlier
                raise ValidationError(
                    {"reference": _("La referencia %(ref)s ya corresponde a otro pago.") % {"ref": reference}}
                )
            touched = [a.invoice for a in payment.allocations.select_related("invoice")]
        update = HandOffUpdate.objects.create(
            handoff=handoff,
            on=on,
            note=note,
            recovered=recovered,
            payment=payment,
            created_by=actor(by),
        )
        if recovered > 0:
            summary = texts.HANDOFF_RECOVERED(case=_case(handoff), amount=texts.money(recovered, handoff.currency))
            if payment.unallocated > 0:
                credit = ledger_texts.PAYMENT_CREDIT(credit=texts.money(payment.unallocated, payment.currency))
                summary = texts.join([summary, credit], sep=" · ")
        else:
            summary = texts.HANDOFF_PROGRESS(case=_case(handoff), note=note.splitlines()[0])
        _timeline(by=by, handoff=handoff, summary=summary, body=note, invoices=touched)
    return update


def _record_recovery(*, by, handoff: HandOff, on: dt.date, amount: Decimal, reference: str, note: str) -> Payment:
    """A payment applied to the hand-off's invoices, oldest due first; the rest is credit."""
    invoices = (
        Invoice.objects.select_for_update()
        .filter(open_invoice_q(), pk__in=handoff.invoices.values("pk"))
        .order_by("due_date", "id")
    )
    remaining = amount
    allocations = []
    for inv in invoices:
        if remaining <= 0:
            break
        take = min(inv.open_balance, remaining)
        allocations.append(AllocationRequest(invoice_id=inv.pk, amount=take))
        remaining -= take
    notes = _("Recuperado por %(case)s (envío %(id)s).") % {"case": case_label(handoff), "id": handoff.pk}
    return ledger.payment_record(
        by=by,
        client=handoff.client,
        amount=amount,
        received_on=on,
        currency=handoff.currency,
        method=Payment.Method.TRANSFER,
        reference=reference,
        allocations=allocations,
        notes=f"{notes}\n{note}".strip(),
    )


def handoff_close(*, by: AbstractBaseUser | None, handoff: HandOff, status: str, note: str) -> HandOff:
    """End a hand-off: recovered, closed without recovery, or returned to internal
    collection. A reason is required unless the money was recovered."""
    ensure_manager(by)
    note = (note or "").strip()
    if status not in CLOSING_STATUSES:
        raise ValidationError({"status": _("Elija cómo termina el envío.")})
    if status != HandOffStatus.RECOVERED and not note:
        raise ValidationError({"note": _("Indique el motivo del cierre.")})
    today = clock.localdate()
    with transaction.atomic():
        handoff = _lock_open(handoff)
        client = Client.objects.select_for_update().get(pk=handoff.client_id)
        handoff.status = status
        handoff.closed_on = today
        handoff.save(update_fields=["status", "closed_on"])
        status_label = handoff.get_status_display()
        HandOffUpdate.objects.create(
            handoff=handoff,
            on=today,
            note=f"{status_label}: {note}" if note else str(status_label),
            created_by=actor(by),
        )
        handoff.client = client
        _timeline(
            by=by,
            handoff=handoff,
            summary=texts.HANDOFF_CLOSED(case=_case(handoff), status=texts.choice(HandOffStatus, handoff.status)),
            body=note,
        )
        new_status = _client_status_after_close(client, handoff)
        if new_status and new_status != client.status:
            ledger.client_update(by=by, client=client, status=new_status)
    return handoff


def _client_status_after_close(client: Client, handoff: HandOff) -> str | None:
    if client.status != STATUS_FOR_KIND[handoff.kind] and client.status not in STATUS_FOR_KIND.values():
        return None  # somebody moved the client on already (e.g. written off): leave it
    still_open = _status_for_open(client, excluding=handoff.pk)
    if still_open:
        return still_open
    if handoff.status == HandOffStatus.RETURNED:
        return Client.Status.IN_COLLECTION
    if handoff.status == HandOffStatus.RECOVERED:
        owes = Invoice.objects.filter(COLLECTIBLE, client=client)
        return Client.Status.IN_COLLECTION if owes.exists() else Client.Status.ACTIVE
    return None


def open_for_notice(notice: Notice) -> HandOff:
    """The hand-off of an agency or legal ladder step (called by dispatch for an approved
    notice). Idempotent: an open hand-off of that kind is returned as it is."""
    kind = KIND_FOR_CHANNEL.get(notice.channel)
    if kind is None:
        raise ValueError(f"notice {notice.pk} is a {notice.channel} step, not a hand-off")
    client = notice.client
    existing = HandOff.objects.filter(client_id=client.pk, kind=kind, status=HandOffStatus.OPEN).first()
    if existing is not None:
        return existing
    # The invoices the manager approved on the notice, still owed; else the overdue ones.
    invoices = list(
        Invoice.objects.filter(open_invoice_q(), notice_items__notice=notice).order_by("due_date", "id")
    ) or list(default_invoices(client))
    left_behind: list[Invoice] = []
    currencies = {inv.currency for inv in invoices}
    if len(currencies) > 1:
        currency = client.currency if client.currency in currencies else invoices[0].currency
        left_behind = [inv for inv in invoices if inv.currency != currency]
        invoices = [inv for inv in invoices if inv.currency == currency]
    notes = _("Abierto por la escalera de cobranza: paso «%(step)s» (aviso %(id)s).") % {
        "step": notice.step.name,
        "id": notice.pk,
    }
    if left_behind:
        notes += "\n" + _("Siguen en cobranza interna, por estar en otra moneda: %(list)s.") % {
            "list": ", ".join(f"{inv.number} ({inv.currency})" for inv in left_behind)
        }
    try:
        return handoff_open(by=None, client=client, kind=kind, invoices=invoices, notes=notes)
    except ValidationError:
        existing = HandOff.objects.filter(client_id=client.pk, kind=kind, status=HandOffStatus.OPEN).first()
        if existing is not None:  # opened meanwhile by someone else
            return existing
        raise
