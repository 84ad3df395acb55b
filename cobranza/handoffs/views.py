"""Hand-offs to a collection agency or to legal: the list with recovery rates, one hand-off
with its updates and case file, the forms to open, update and close one, and the client
page's hand-off panel.

Same access rules as ``accounts.views``: a login and a staff role everywhere; opening and
closing are for managers (403 to everyone else); a collector reaches only the hand-offs of
their own clients, and anything else is a 404. The case file is served only here, after the
same check — never as a public media URL. Reads come from ``cobranza.handoffs.selectors``;
writes go through ``cobranza.handoffs.services``, which checks permissions again.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from accounts.forms import add_service_errors
from accounts.models import ZERO
from accounts.roles import is_manager, is_staff_member
from accounts.rules import is_collectible
from accounts.services import ensure_can_work
from accounts.utils import money_str
from accounts.views import _visible_client, manager_required, staff_required
from cobranza.handoffs import selectors
from cobranza.handoffs import services as handoffs
from cobranza.handoffs.forms import HandOffCloseForm, HandOffFilterForm, HandOffOpenForm, HandOffUpdateForm
from cobranza.models import HandOff, HandOffKind, HandOffStatus

HANDOFFS_PER_PAGE = 50
CONTENT_TYPES = {"pdf": "application/pdf", "csv": "text/csv; charset=utf-8"}


def _detail_url(handoff) -> str:
    return reverse("cobranza:handoff_detail", args=[handoff.pk])


def _visible_handoff(request, pk) -> HandOff:
    try:
        return selectors.handoff_detail(user=request.user, pk=pk)
    except HandOff.DoesNotExist as exc:
        raise Http404(_("Envío no encontrado.")) from exc


def _file_info(handoff) -> dict[str, bool]:
    return {fmt: bool((path := selectors.case_file_path(handoff, fmt)) and path.is_file()) for fmt in selectors.FORMATS}


# --- list ------------------------------------------------------------------------------------


@staff_required
@require_GET
def handoff_list(request):
    agencies = selectors.known_agencies()
    form = HandOffFilterForm(request.GET, agencies=agencies)
    filters = form.filters()
    qs = selectors.handoff_list(user=request.user, **filters)
    page = Paginator(qs, HANDOFFS_PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "cobranza/handoffs/list.html",
        {
            "form": form,
            "page_obj": page,
            "handoffs": page.object_list,
            "totals": selectors.recovery_totals(qs),
            "filters": filters,
            "is_filtered": any(v for v in filters.values()),
        },
    )


# --- detail and files ------------------------------------------------------------------------


@staff_required
@require_GET
def handoff_detail(request, pk):
    handoff = _visible_handoff(request, pk)
    manager = is_manager(request.user)
    is_open = handoff.status == HandOffStatus.OPEN
    invoices = list(selectors.handoff_invoices(handoff))
    still_owed = sum(
        (inv.open_balance for inv in invoices if is_collectible(inv)),
        ZERO,
    )
    return render(
        request,
        "cobranza/handoffs/detail.html",
        {
            "handoff": handoff,
            "client": handoff.client,
            "invoices": invoices,
            "still_owed": still_owed,
            "updates": selectors.handoff_updates(handoff),
            "files": _file_info(handoff),
            "update_form": HandOffUpdateForm() if is_open else None,
            "close_form": HandOffCloseForm() if is_open and manager else None,
            "can_manage": manager,
        },
    )


@staff_required
@require_GET
def handoff_file(request, pk):
    """The case file (``?format=pdf``, the default, or ``csv``), only to someone who may see
    the client."""
    handoff = _visible_handoff(request, pk)
    fmt = request.GET.get("format", "pdf")
    path = selectors.case_file_path(handoff, fmt)
    if path is None or not path.is_file():
        raise Http404(_("El expediente no está disponible."))
    response = FileResponse(
        path.open("rb"),
        content_type=CONTENT_TYPES[fmt],
        as_attachment=fmt == "csv" or "download" in request.GET,
        filename=f"expediente-{handoff.pk}-{handoff.opened_on:%Y%m%d}.{fmt}",
    )
    response["Cache-Control"] = "private, no-store"
    return response


# --- open, update, close ---------------------------------------------------------------------


@manager_required
@require_http_methods(["GET", "POST"])
def handoff_create(request, pk):
    client = _visible_client(request, pk)
    kind = request.GET.get("kind")
    initial = {"kind": kind if kind in HandOffKind.values else HandOffKind.AGENCY}
    overdue_ids = set(selectors.default_invoices(client).values_list("pk", flat=True))
    initial["invoices"] = list(overdue_ids)
    form = HandOffOpenForm(
        request.POST or None,
        invoices=selectors.sendable_invoices(client),
        agencies=selectors.known_agencies(),
        initial=initial,
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            handoff = handoffs.handoff_open(
                by=request.user,
                client=client,
                kind=data["kind"],
                invoices=form.chosen_invoices(),
                agency=data["agency"],
                notes=data["notes"],
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(
                request,
                _("%(client)s enviado a %(kind)s por %(amount)s. El expediente está listo para descargar.")
                % {
                    "client": client.display_name,
                    "kind": handoff.get_kind_display().lower(),
                    "amount": money_str(handoff.amount, handoff.currency),
                },
            )
            return redirect(_detail_url(handoff))
    today_invoices = list(form.fields["invoices"].queryset)
    return render(
        request,
        "cobranza/handoffs/create.html",
        {
            "form": form,
            "client": client,
            "invoices": today_invoices,
            "overdue_ids": overdue_ids,
            "title": _("Enviar a agencia o jurídico"),
            "cancel_url": reverse("client_detail", args=[client.pk]),
        },
    )


@staff_required
@require_http_methods(["GET", "POST"])
def handoff_update(request, pk):
    handoff = _visible_handoff(request, pk)
    ensure_can_work(request.user, handoff.client)
    if handoff.status != HandOffStatus.OPEN:
        messages.error(request, _("Este envío ya está cerrado: no admite más avances."))
        return redirect(_detail_url(handoff))
    form = HandOffUpdateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            update = handoffs.handoff_update(
                by=request.user,
                handoff=handoff,
                on=data["on"],
                note=data["note"],
                recovered=data["recovered"],
                reference=data["reference"],
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            if update.recovered > 0:
                messages.success(
                    request,
                    _("Recuperación de %(amount)s registrada como pago del cliente.")
                    % {"amount": money_str(update.recovered, handoff.currency)},
                )
            else:
                messages.success(request, _("Avance registrado."))
            return redirect(_detail_url(handoff))
    return render(
        request,
        "cobranza/handoffs/form.html",
        {
            "form": form,
            "handoff": handoff,
            "client": handoff.client,
            "title": _("Registrar avance o recuperación"),
            "submit_label": _("Registrar"),
            "cancel_url": _detail_url(handoff),
        },
    )


@manager_required
@require_http_methods(["GET", "POST"])
def handoff_close(request, pk):
    handoff = _visible_handoff(request, pk)
    if handoff.status != HandOffStatus.OPEN:
        messages.error(request, _("Este envío ya está cerrado."))
        return redirect(_detail_url(handoff))
    form = HandOffCloseForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            closed = handoffs.handoff_close(
                by=request.user, handoff=handoff, status=form.cleaned_data["status"], note=form.cleaned_data["note"]
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(
                request,
                _("Envío cerrado: %(status)s.") % {"status": closed.get_status_display().lower()},
            )
            return redirect(_detail_url(handoff))
    return render(
        request,
        "cobranza/handoffs/form.html",
        {
            "form": form,
            "handoff": handoff,
            "client": handoff.client,
            "title": _("Cerrar el envío"),
            "submit_label": _("Cerrar el envío"),
            "cancel_url": _detail_url(handoff),
        },
    )


# --- the client page's panel -------------------------------------------------------------------


def client_panel(request, client) -> str:
    """Open hand-offs of the client, and for managers the form to send it (one query).
    Registered in ``CobranzaConfig.ready``."""
    if not is_staff_member(request.user):
        return ""
    manager = is_manager(request.user)
    open_handoffs = selectors.client_open_handoffs(client)
    if not open_handoffs and not manager:
        return ""
    open_kinds = {h.kind for h in open_handoffs}
    return render_to_string(
        "cobranza/_handoff_panel.html",
        {
            "client": client,
            "handoffs": open_handoffs,
            "can_manage": manager,
            "kinds": [(value, label) for value, label in HandOffKind.choices if value not in open_kinds],
        },
        request=request,
    )
