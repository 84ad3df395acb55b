"""Delinquency profiles, late fees and negotiated discounts in the browser: the profile panel of
the client page (with the forms it posts to), the managers' profiles overview, the surcharge
rules editor and the discount approval queue.

Same access rules as ``accounts.views``: a login and a staff role everywhere; manager pages
answer 403 to everyone else; a collector reaches only their own clients, invoices, fees and
discounts, and anything else is a 404. Reads come from ``selectors``; writes go through
``services``, which checks permissions again.
"""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import clock
from accounts import selectors as ledger_selectors
from accounts.models import Segment
from accounts.roles import is_manager, is_staff_member
from accounts.utils import money_str
from accounts.views import _safe_next, _visible_client, manager_required, section_url, staff_required
from cobranza.ladders.forms import add_service_errors
from cobranza.models import Discount, LateFee, LateFeeRule, Profile
from cobranza.ops import selectors as ops_selectors
from cobranza.profiles import jobs as profiles
from cobranza.profiles import selectors, services
from cobranza.profiles.forms import (
    DiscountDecisionForm,
    DiscountRequestForm,
    FeeWaiveForm,
    LateFeeRuleForm,
    ProfileFilterForm,
    ProfileOverrideForm,
    style,
)

CLIENTS_PER_PAGE = 50
RECENT_DECISIONS = 20


def _client_url(client) -> str:
    """The client page, its "Cobranza" section open at the profile panel."""
    return section_url(client, "cobranza", "perfil")


def _errors(request, errors) -> None:
    for field_errors in errors.values():
        for error in field_errors:
            messages.error(request, error)


def _service_errors(request, exc: ValidationError) -> None:
    for error in exc.messages:
        messages.error(request, error)


# --- the client page's panel ---------------------------------------------------------------------


def summary_panel(request, client) -> str:
    """The client page summary's "who and what next" card: the delinquency profile with its
    protocol, and the next reminder still to go out. Two queries (registered in
    ``CobranzaConfig.ready``); the full profile panel is in the "Cobranza" section."""
    if not is_staff_member(request.user):
        return ""
    return render_to_string(
        "cobranza/_summary_panel.html",
        {
            "client": client,
            "profile": selectors.client_profile_summary(client),
            "next_notice": ops_selectors.client_next_notice(client),
        },
        request=request,
    )


def profile_panel(request, client) -> str:
    """The profile, fees and discounts panel of the client page (registered in
    ``CobranzaConfig.ready`` after the dunning panel). A constant number of queries."""
    if not is_staff_member(request.user):
        return ""
    panel = selectors.client_profile_panel(client)
    return render_to_string(
        "cobranza/_profile_panel.html",
        {
            "panel": panel,
            "client": client,
            "is_manager": is_manager(request.user),
            "profiles": Profile.choices,
            "rules": profiles.RULES,
            "today": clock.localdate(),
            **_as_of(request, client),
        },
        request=request,
    )


def _as_of(request, client) -> dict:
    """``?perfil_al=YYYY-MM-DD``: the profile the client had at that day's close, from the
    ledger as it was then (``jobs.profile_as_of``; one query, nothing stored)."""
    value = (request.GET.get("perfil_al") or "").strip()
    if not value:
        return {}
    today = clock.localdate()
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        return {"as_of_value": value, "as_of_error": _("Escriba la fecha como AAAA-MM-DD.")}
    if day > today:
        return {"as_of_value": value, "as_of_error": _("La fecha no puede ser posterior a hoy.")}
    computed, evidence = profiles.profile_as_of(client.pk, day)
    return {
        "as_of_value": value,
        "as_of": {"day": day, "profile": computed, "label": Profile(computed).label, "evidence": evidence},
    }


@staff_required
@require_POST
def profile_override(request, pk):
    client = _visible_client(request, pk)
    form = ProfileOverrideForm(request.POST)
    if not form.is_valid():
        _errors(request, form.errors)
        return redirect(_client_url(client))
    chosen = form.cleaned_data["profile"]
    try:
        services.profile_override(by=request.user, client=client, profile=chosen, reason=form.cleaned_data["reason"])
    except ValidationError as exc:
        _service_errors(request, exc)
    else:
        if chosen:
            messages.success(
                request,
                _("Perfil de %(client)s: %(profile)s (asignado).")
                % {"client": client.display_name, "profile": Profile(chosen).label},
            )
        else:
            messages.success(request, _("%(client)s vuelve a su perfil calculado.") % {"client": client.display_name})
    return redirect(_client_url(client))


def _visible_fee(request, pk) -> LateFee:
    visible = ledger_selectors.clients_visible_to(request.user).values("pk")
    return get_object_or_404(
        LateFee.objects.select_related("invoice", "invoice__client").filter(invoice__client__in=visible), pk=pk
    )


@staff_required
@require_POST
def fee_waive(request, pk):
    fee = _visible_fee(request, pk)
    client = fee.invoice.client
    form = FeeWaiveForm(request.POST)
    if not form.is_valid():
        _errors(request, form.errors)
        return redirect(_client_url(client))
    try:
        services.late_fee_waive(by=request.user, fee=fee, reason=form.cleaned_data["reason"])
    except ValidationError as exc:
        _service_errors(request, exc)
    else:
        messages.success(
            request,
            _("Recargo de %(amount)s de la factura %(number)s condonado.")
            % {"amount": money_str(fee.amount, fee.invoice.currency), "number": fee.invoice.number},
        )
    return redirect(_client_url(client))


@staff_required
@require_POST
def discount_request(request, pk):
    invoice = get_object_or_404(ledger_selectors.invoices_visible_to(request.user), pk=pk)
    client = invoice.client
    form = DiscountRequestForm(request.POST)
    if not form.is_valid():
        _errors(request, form.errors)
        return redirect(_client_url(client))
    try:
        discount = services.discount_request(
            by=request.user, invoice=invoice, amount=form.cleaned_data["amount"], reason=form.cleaned_data["reason"]
        )
    except ValidationError as exc:
        _service_errors(request, exc)
    else:
        amount = money_str(discount.amount, invoice.currency)
        if discount.status == Discount.Status.APPLIED:
            messages.success(
                request,
                _("Descuento de %(amount)s aplicado a la factura %(number)s.")
                % {"amount": amount, "number": invoice.number},
            )
        else:
            messages.info(
                request,
                _("Descuento de %(amount)s en la factura %(number)s enviado al gerente para su aprobación.")
                % {"amount": amount, "number": invoice.number},
            )
    return redirect(_client_url(client))


# --- managers' pages -------------------------------------------------------------------------------


@manager_required
@require_GET
def profile_list(request):
    form = ProfileFilterForm(request.GET)
    chosen = form.chosen()
    summary, clients = selectors.profiles_overview(
        clients=ledger_selectors.clients_visible_to(request.user), profile=chosen
    )
    page = Paginator(clients, CLIENTS_PER_PAGE).get_page(request.GET.get("page"))
    labels = dict(Profile.choices)
    for client in page.object_list:
        client.profile_label = labels.get(client.effective_profile, client.effective_profile)
    return render(
        request,
        "cobranza/profiles/profile_list.html",
        {
            "form": style(form),
            "summary": summary,
            "chosen": chosen,
            "chosen_label": Profile(chosen).label if chosen else "",
            "page_obj": page,
            "clients": page.object_list,
            "total": sum(row["count"] for row in summary),
        },
    )


@manager_required
@require_http_methods(["GET", "POST"])
def fee_rules(request):
    segments = list(Segment.objects.select_related("late_fee_rule").order_by("position", "name"))
    wanted = request.POST.get("segment") or request.GET.get("segment")
    segment = None
    if wanted:
        segment = next((s for s in segments if str(s.pk) == str(wanted)), None)
        if segment is None and request.method == "POST":
            messages.error(request, _("El segmento elegido no existe."))
            return redirect(reverse("cobranza:fee_rules"))
    if segment is None and segments:
        segment = segments[0]
    form = None
    if segment is not None:
        rule = getattr(segment, "late_fee_rule", None)
        form = LateFeeRuleForm(request.POST if request.method == "POST" else None, segment=segment, rule=rule)
        if request.method == "POST" and form.is_valid():
            try:
                services.late_fee_rule_save(by=request.user, segment=segment, **form.changes())
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, _("Recargos del segmento «%(name)s» guardados.") % {"name": segment.name})
                return redirect(f"{reverse('cobranza:fee_rules')}?segment={segment.pk}")
    rows = [{"segment": s, "rule": getattr(s, "late_fee_rule", None)} for s in segments]
    return render(
        request,
        "cobranza/profiles/fee_rules.html",
        {"rows": rows, "segment": segment, "form": form},
    )


@manager_required
@require_GET
def discounts(request):
    pending = list(
        Discount.objects.filter(status=Discount.Status.REQUESTED)
        .select_related("invoice", "invoice__client", "invoice__client__segment", "requested_by")
        .order_by("requested_at", "id")
    )
    decided = list(
        Discount.objects.exclude(status=Discount.Status.REQUESTED)
        .select_related("invoice", "invoice__client", "requested_by", "decided_by")
        .order_by("-decided_at", "-id")[:RECENT_DECISIONS]
    )
    thresholds = {r.segment_id: r for r in LateFeeRule.objects.all()}
    for discount in pending:
        discount.rule = thresholds.get(discount.invoice.client.segment_id)
    return render(request, "cobranza/profiles/discounts.html", {"pending": pending, "decided": decided})


@manager_required
@require_POST
def discount_decide(request, pk):
    discount = get_object_or_404(Discount.objects.select_related("invoice", "invoice__client"), pk=pk)
    back = _safe_next(request, reverse("cobranza:discounts"))
    form = DiscountDecisionForm(request.POST)
    if not form.is_valid():
        _errors(request, form.errors)
        return redirect(back)
    invoice = discount.invoice
    values = {"amount": money_str(discount.amount, invoice.currency), "number": invoice.number}
    try:
        if form.cleaned_data["action"] == form.APPROVE:
            services.discount_approve(by=request.user, discount=discount, notes=form.cleaned_data["notes"])
            text = _("Descuento de %(amount)s aprobado y aplicado a la factura %(number)s.")
        else:
            services.discount_reject(by=request.user, discount=discount, notes=form.cleaned_data["notes"])
            text = _("Descuento de %(amount)s en la factura %(number)s rechazado.")
    except ValidationError as exc:
        _service_errors(request, exc)
    else:
        messages.success(request, text % values)
    return redirect(back)
