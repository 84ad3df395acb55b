"""The collector's work on one client: "Registrar gestión" (one quick form for a call, visit,
email or WhatsApp and the promise, plan or dispute it produced), commitments (promises, plans,
extensions) and disputes, and the client page's workspace panel that shows them with the
client analysis (docs/domain.md#client-analysis).

Same access rules as ``accounts.views``: a login and a staff role everywhere; a collector
reaches only their own clients (anything else is a 404, so ids reveal nothing); managers reach
every client. A dispute is resolved by its owner or a manager (403 for anyone else). Reads come
from ``cobranza.workspace.selectors``; writes go through ``cobranza.workspace.services`` and
``accounts.services``, which check permissions again; a service's ``ValidationError`` is shown
next to the field it names.
"""

from __future__ import annotations

from decimal import Decimal

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_http_methods, require_POST

from accounts import clock
from accounts import selectors as ledger_selectors
from accounts import services as ledger
from accounts.models import ZERO
from accounts.roles import is_manager, is_staff_member
from accounts.utils import money_str
from accounts.views import _visible_client, section_url, staff_required
from cobranza.engine import contact_rules
from cobranza.models import CommitmentKind, CommitmentStatus, DisputeStatus
from cobranza.workspace import selectors, services
from cobranza.workspace.forms import (
    CommitmentCancelForm,
    CommitmentForm,
    DisputeForm,
    DisputeOpenForm,
    DisputeResolveForm,
    ExtensionForm,
    Frequency,
    OutcomeForms,
    PlanForm,
    Reached,
    add_service_errors,
    promise_rows,
)

ANCHOR = "compromisos"


def _client_url(client) -> str:
    """The client page, its "Cobranza" section open at the workspace panel."""
    return section_url(client, "cobranza", ANCHOR)


def _invoice_rows(invoices, selected) -> list[tuple]:
    """(invoice, checked) for the checkbox lists the templates draw by hand."""
    chosen = {str(v) for v in (selected or [])}
    return [(inv, str(inv.pk) in chosen) for inv in invoices]


def _defaults(client, invoices) -> tuple[list[int], Decimal]:
    """The invoices a new commitment takes by default (open, free, in the client's currency)
    and what they owe."""
    ids = [inv.pk for inv in invoices if inv.currency == client.currency and not inv.committed]
    owed = sum((inv.open_balance for inv in invoices if inv.pk in ids), ZERO)
    return ids, owed


def _owed(client, invoices, chosen) -> Decimal:
    """What the chosen invoices owe (none chosen: every open one in the client's currency, as
    ``commitment_create`` takes them)."""
    if chosen:
        return sum((inv.open_balance for inv in chosen), ZERO)
    return sum((inv.open_balance for inv in invoices if inv.currency == client.currency), ZERO)


def _dates(rows) -> str:
    return ", ".join(
        f"{money_str(amount, currency)} ({date_format(when, 'SHORT_DATE_FORMAT')})" for when, amount, currency in rows
    )


def _commitment_message(commitment) -> str:
    installments = list(commitment.installments.all())
    rows = _dates((i.due_on, i.amount, commitment.currency) for i in installments)
    if commitment.kind == CommitmentKind.PLAN:
        return ngettext(
            "Plan de pagos de %(count)d cuota registrado: %(dates)s.",
            "Plan de pagos de %(count)d cuotas registrado: %(dates)s.",
            len(installments),
        ) % {"count": len(installments), "dates": rows}
    if commitment.kind == CommitmentKind.EXTENSION:
        return _("Prórroga registrada: %(dates)s.") % {"dates": rows}
    return _("Promesa de pago registrada: %(dates)s. Los recordatorios de sus facturas se detienen.") % {"dates": rows}


# --- the panel of the client page ---------------------------------------------------------------


def workspace_panel(request, client) -> str:
    """Commitments, disputes and the client analysis on the client page (registered in
    ``CobranzaConfig.ready``). Seven queries, whatever the history."""
    if not is_staff_member(request.user):
        return ""
    panel = selectors.client_workspace(client)
    today = panel.today
    default_ids = panel.default_invoice_ids
    return render_to_string(
        "cobranza/_workspace_panel.html",
        {
            "panel": panel,
            "analysis": panel.analysis,
            "client": client,
            "today": today,
            "can_manage": is_manager(request.user),
            "plan_form": PlanForm(today=today),
            "extension_form": ExtensionForm(today=today),
            "dispute_form": DisputeForm(),
            "resolve_form": DisputeResolveForm(),
            "commitment_invoices": [(inv, inv.pk in default_ids) for inv in panel.open_invoices],
            "dispute_invoices": [(inv, False) for inv in panel.open_invoices],
            "default_total": panel.default_total,
        },
        request=request,
    )


# --- registrar gestión ---------------------------------------------------------------------------


@staff_required
@require_http_methods(["GET", "POST"])
def log_outcome(request, pk):
    client = _visible_client(request, pk)
    today = clock.localdate()
    invoices = list(selectors.open_invoices_for_commitment(client))
    default_ids, default_total = _defaults(client, invoices)
    # The contact rules for a call right now: outside them, logging a call needs a reason.
    call = contact_rules.decide(client=client, channel=contact_rules.CALL_CHANNEL, at=clock.now())
    bundle = OutcomeForms(
        request.POST if request.method == "POST" else None,
        contacts=ledger_selectors.client_contacts(client, active_only=True),
        invoices=selectors.open_invoices_for_commitment(client),
        today=today,
        default_total=default_total,
        initial_invoices=default_ids,
        call_blocked="" if call.allowed else call.reason,
    )
    if request.method == "POST" and bundle.is_valid():
        done = _record_outcome(request, client, bundle, invoices)
        if done is not None:
            for text in done:
                messages.success(request, text)
            return redirect(_client_url(client))
    return render(
        request,
        "cobranza/workspace/log_outcome.html",
        {
            "client": client,
            "forms": bundle,
            "form": bundle.main,
            "title": _("Registrar gestión"),
            "invoice_rows": _invoice_rows(invoices, bundle.main["invoices"].value()),
            "section": bundle.section,
            "today": today,
            "default_total": default_total,
            "cancel_url": reverse("client_detail", args=[client.pk]),
        },
    )


def _record_outcome(request, client, bundle: OutcomeForms, invoices) -> list[str] | None:
    """The interaction and what it produced, in one transaction: when the promise, plan or
    dispute is refused nothing is saved and the errors go back to the form."""
    data = bundle.main.cleaned_data
    section = bundle.section
    chosen = list(data["invoices"])
    reached = data["reached"] == Reached.REACHED
    plan_rows = None
    if section == "plan":
        plan_rows = bundle.plan.schedule(owed=_owed(client, invoices, chosen))
        if plan_rows is None:
            return None
    step = ""
    texts = []
    try:
        with transaction.atomic():
            entry = ledger.interaction_log(
                by=request.user,
                client=client,
                kind=data["channel"],
                direction=data["direction"],
                outcome=bundle.main.outcome(),
                summary=bundle.main.summary_text(),
                body=bundle.main.body_text(),
                contact=data["contact"],
                nonpayment_reason=data["nonpayment_reason"],
                next_action_on=data["next_action_on"],
                invoices=chosen if reached else [],
            )
            texts.append(_("Gestión registrada: %(summary)s.") % {"summary": entry.summary})
            step = section
            if section in ("promise", "plan"):
                commitment = services.commitment_create(
                    by=request.user,
                    client=client,
                    kind=CommitmentKind.PROMISE if section == "promise" else CommitmentKind.PLAN,
                    installments=bundle.promise.rows() if section == "promise" else plan_rows,
                    invoices=chosen or None,
                    contact=data["contact"],
                    notes=data["body"],
                )
                texts.append(_commitment_message(commitment))
            elif section == "dispute":
                dispute = services.dispute_open(
                    by=request.user,
                    client=client,
                    invoices=chosen,
                    reason=bundle.dispute.cleaned_data["reason"],
                    description=bundle.dispute.cleaned_data["description"],
                )
                texts.append(
                    _("Disputa abierta (%(reason)s): sus facturas quedan fuera de la cobranza hasta resolverla.")
                    % {"reason": dispute.get_reason_display()}
                )
    except ValidationError as exc:
        bundle.add_service_errors(exc, step)
        return None
    return texts


# --- commitments -------------------------------------------------------------------------------

KIND_TITLES = {
    CommitmentKind.PROMISE: gettext_lazy("Promesa de pago"),
    CommitmentKind.PLAN: gettext_lazy("Plan de pagos"),
    CommitmentKind.EXTENSION: gettext_lazy("Prórroga"),
}
SUBMIT_LABELS = {
    CommitmentKind.PROMISE: gettext_lazy("Registrar promesa"),
    CommitmentKind.PLAN: gettext_lazy("Registrar plan"),
    CommitmentKind.EXTENSION: gettext_lazy("Registrar prórroga"),
}


def _kind(request) -> str:
    kind = request.POST.get("kind") or request.GET.get("kind") or CommitmentKind.PROMISE
    return kind if kind in CommitmentKind.values else CommitmentKind.PROMISE


def _section_form(kind: str, data, *, today, default_total):
    if kind == CommitmentKind.PLAN:
        return PlanForm(data, today=today)
    if kind == CommitmentKind.EXTENSION:
        return ExtensionForm(data, today=today)
    return promise_rows(data, today=today, amount=default_total)


@staff_required
@require_http_methods(["GET", "POST"])
def commitment_create(request, pk):
    """A promise (dates and amounts), a plan (built by a rule) or an extension (one new date)."""
    client = _visible_client(request, pk)
    kind = _kind(request)
    today = clock.localdate()
    invoices = list(selectors.open_invoices_for_commitment(client))
    default_ids, default_total = _defaults(client, invoices)
    data = request.POST if request.method == "POST" else None
    form = CommitmentForm(
        data,
        kind=kind,
        contacts=ledger_selectors.client_contacts(client, active_only=True),
        invoices=selectors.open_invoices_for_commitment(client),
        initial={"invoices": default_ids},
    )
    section = _section_form(kind, data, today=today, default_total=default_total)
    # Both validated (not short-circuited), so every error shows at once.
    if request.method == "POST" and form.is_valid() & section.is_valid():
        chosen = form.chosen_or_none()
        owed = _owed(client, invoices, chosen)
        if kind == CommitmentKind.PLAN:
            rows = section.schedule(owed=owed)
        elif kind == CommitmentKind.EXTENSION:
            rows = [(section.cleaned_data["new_date"], owed)]
        else:
            rows = section.rows()
        if rows is not None:
            try:
                commitment = services.commitment_create(
                    by=request.user,
                    client=client,
                    kind=kind,
                    installments=rows,
                    invoices=chosen,
                    contact=form.cleaned_data["contact"],
                    notes=form.cleaned_data["notes"],
                )
            except ValidationError as exc:
                add_service_errors(exc, main=form, section=section)
            else:
                messages.success(request, _commitment_message(commitment))
                return redirect(_client_url(client))
    return render(
        request,
        "cobranza/workspace/commitment_form.html",
        {
            "client": client,
            "kind": kind,
            "form": form,
            "section": section,
            "title": KIND_TITLES[kind],
            "submit_label": SUBMIT_LABELS[kind],
            "invoice_rows": _invoice_rows(invoices, form["invoices"].value()),
            "today": today,
            "default_total": default_total,
            "cancel_url": _client_url(client),
        },
    )


@staff_required
@require_POST
def plan_preview(request, pk):
    """The schedule a plan's rule gives, before saving it (an htmx fragment). POST: the form
    it previews carries the collector's notes, which must not travel in a URL (access logs)."""
    client = _visible_client(request, pk)
    today = clock.localdate()
    invoices = list(selectors.open_invoices_for_commitment(client))
    wanted = set(request.POST.getlist("invoices"))
    chosen = [inv for inv in invoices if str(inv.pk) in wanted]
    form = PlanForm(request.POST, today=today)
    owed = _owed(client, invoices, chosen)
    # Until a first date is given there is nothing to show, and nothing to complain about.
    started = bool(request.POST.get(form.add_prefix("first_on")))
    rows = form.schedule(owed=owed) if started else None
    currency = chosen[0].currency if chosen else client.currency
    return render(
        request,
        "cobranza/workspace/_plan_preview.html",
        {
            "form": form,
            "started": started,
            "rows": rows,
            "total": sum((amount for _when, amount in rows or []), ZERO),
            "currency": currency,
            "owed": owed,
            "monthly": form.cleaned_data.get("frequency") == Frequency.MONTHLY if rows else False,
        },
    )


@staff_required
@require_http_methods(["GET", "POST"])
def commitment_cancel(request, pk):
    commitment = get_object_or_404(selectors.commitments_visible_to(request.user), pk=pk)
    client = commitment.client
    form = CommitmentCancelForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            services.commitment_cancel(by=request.user, commitment=commitment, reason=form.cleaned_data["reason"])
        except ValidationError as exc:
            add_service_errors(exc, main=form)
        else:
            messages.success(
                request,
                _("%(kind)s cancelada: los recordatorios de sus facturas se reanudan donde estaban.")
                % {"kind": commitment.get_kind_display()},
            )
            return redirect(_client_url(client))
    return render(
        request,
        "cobranza/workspace/commitment_cancel.html",
        {
            "client": client,
            "commitment": commitment,
            "is_open": commitment.status == CommitmentStatus.OPEN,
            "form": form,
            "title": _("Cancelar compromiso"),
            "cancel_url": _client_url(client),
        },
    )


# --- disputes -------------------------------------------------------------------------------


@staff_required
@require_http_methods(["GET", "POST"])
def dispute_open(request, pk):
    client = _visible_client(request, pk)
    data = request.POST if request.method == "POST" else None
    invoices = list(selectors.open_invoices_for_dispute(client))
    form = DisputeOpenForm(data, invoices=selectors.open_invoices_for_dispute(client))
    section = DisputeForm(data)
    if request.method == "POST" and form.is_valid() & section.is_valid():
        try:
            dispute = services.dispute_open(
                by=request.user,
                client=client,
                invoices=list(form.cleaned_data["invoices"]),
                reason=section.cleaned_data["reason"],
                description=section.cleaned_data["description"],
            )
        except ValidationError as exc:
            add_service_errors(exc, main=form, section=section)
        else:
            messages.success(
                request,
                _("Disputa abierta (%(reason)s): sus facturas quedan fuera de la cobranza hasta resolverla.")
                % {"reason": dispute.get_reason_display()},
            )
            return redirect(_client_url(client))
    return render(
        request,
        "cobranza/workspace/dispute_open.html",
        {
            "client": client,
            "form": form,
            "section": section,
            "title": _("Abrir disputa"),
            "invoice_rows": _invoice_rows(invoices, form["invoices"].value()),
            "cancel_url": _client_url(client),
        },
    )


def can_resolve(user, dispute) -> bool:
    """The dispute's owner or a manager (as ``services.dispute_resolve`` decides)."""
    return is_manager(user) or dispute.owner_id in (None, user.pk)


@staff_required
@require_http_methods(["GET", "POST"])
def dispute_resolve(request, pk):
    dispute = get_object_or_404(selectors.disputes_visible_to(request.user), pk=pk)
    if not can_resolve(request.user, dispute):
        raise PermissionDenied(_("Solo el responsable de la disputa o un gerente la resuelven."))
    client = dispute.client
    form = DisputeResolveForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            resolved = services.dispute_resolve(
                by=request.user,
                dispute=dispute,
                resolution=data["resolution"],
                amount=data["amount"] or Decimal("0"),
                notes=data["notes"],
            )
        except ValidationError as exc:
            add_service_errors(exc, main=form)
        else:
            messages.success(
                request,
                _("Disputa resuelta: %(resolution)s. Sus facturas vuelven a la cobranza.")
                % {"resolution": resolved.get_resolution_display()},
            )
            return redirect(_client_url(client))
    return render(
        request,
        "cobranza/workspace/dispute_resolve.html",
        {
            "client": client,
            "dispute": dispute,
            "is_open": dispute.status == DisputeStatus.OPEN,
            "invoices": list(dispute.invoices.order_by("due_date", "id")),
            "form": form,
            "title": _("Resolver disputa"),
            "cancel_url": _client_url(client),
        },
    )
