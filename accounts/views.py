"""The browser UI: parse input, call a selector or a service, render.

Access rules, in one place per view:
- every page needs a login (LoginRequiredMiddleware) and a staff role (``staff_required``);
- a client is always looked up through ``clients_visible_to``: another collector's client is
  a 404, not a 403, so ids do not reveal which clients exist;
- manager-only pages raise PermissionDenied (403) for everyone else.
Services check permissions again: they are the last line.
"""

from __future__ import annotations

import functools

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from . import audit, preferences, selectors, services
from .extensions import client_panels, outcome_form_url
from .forms import (
    BulkAssignForm,
    ClientFilterForm,
    ClientForm,
    ContactForm,
    InteractionForm,
    InvoiceForm,
    InvoiceStatusForm,
    PaymentForm,
    PreferenceForm,
    add_service_errors,
    collector_options,
)
from .models import Interaction
from .roles import is_manager, is_staff_member
from .utils import money_str

CLIENTS_PER_PAGE = 25
TIMELINE_PER_PAGE = 50


def staff_required(view):
    """A logged-in user without a role sees nothing of the ledger."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if not is_staff_member(request.user):
            raise PermissionDenied(_("Su usuario no tiene un rol asignado."))
        return view(request, *args, **kwargs)

    return wrapper


def manager_required(view):
    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if not is_manager(request.user):
            raise PermissionDenied(_("Esta acción requiere el rol de gerente."))
        return view(request, *args, **kwargs)

    return wrapper


def _visible_client(request, pk, *related):
    qs = selectors.clients_visible_to(request.user)
    if related:
        qs = qs.select_related(*related)
    return get_object_or_404(qs, pk=pk)


def _safe_next(request, fallback: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, require_https=request.is_secure()):
        return target
    return fallback


def _is_partial(request, target: str) -> bool:
    """An htmx request that swaps only ``target`` (a history restore needs the full page)."""
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.history_restore_request and htmx.target == target


# --- home ----------------------------------------------------------------------------------


@staff_required
@require_GET
def home(request):
    return render(
        request,
        "home.html",
        {
            "portfolio": selectors.portfolio_aging(user=request.user),
            "next_actions": selectors.upcoming_next_actions(user=request.user, limit=15),
        },
    )


# --- client list ---------------------------------------------------------------------------


@staff_required
@require_GET
def client_list(request):
    manager = is_manager(request.user)
    options = collector_options() if manager else None
    form = ClientFilterForm(request.GET, collector_options=options)
    filters = form.filters()
    paginator = Paginator(selectors.client_list(user=request.user, **filters), CLIENTS_PER_PAGE)
    page = paginator.get_page(request.GET.get("page"))
    clients = list(page.object_list)
    # What the search matched besides the name (an invoice, a contact), for this page's rows.
    hits = selectors.search_hits(filters["q"], [c.pk for c in clients]) if filters["q"] else {}
    for client in clients:
        client.search_hit = hits.get(client.pk)
    context = {
        "form": form,
        "page_obj": page,
        "clients": clients,
        "filters": filters,
        "is_filtered": any(v for k, v in filters.items() if k != "sort"),
        "collector_options": options,
    }
    template = (
        "accounts/_client_results.html" if _is_partial(request, "client-results") else "accounts/client_list.html"
    )
    response = render(request, template, context)
    # The same URL answers with a fragment or a page: caches must tell them apart.
    patch_vary_headers(response, ["HX-Request"])
    return response


@staff_required
@require_GET
def client_suggest(request):
    """The header box's suggestions as the collector types: an HTML fragment with the best few
    matches of the client list's own search (docs/domain.md#search)."""
    q = (request.GET.get("q") or "").strip()[:100]
    context = {
        "q": q,
        "clients": selectors.client_suggestions(user=request.user, q=q),
        "min_chars": selectors.SUGGEST_MIN_CHARS,
    }
    response = render(request, "accounts/_client_suggestions.html", context)
    response["Cache-Control"] = "private, no-store"
    return response


@manager_required
@require_POST
def client_bulk_assign(request):
    form = BulkAssignForm(
        request.POST,
        clients_qs=selectors.clients_visible_to(request.user),
        collector_options=collector_options(),
    )
    back = _safe_next(request, reverse("client_list"))
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect(back)
    collector = form.cleaned_data["collector"]
    try:
        changed = services.clients_assign_collector(
            by=request.user, client_ids=[c.pk for c in form.cleaned_data["clients"]], collector=collector
        )
    except ValidationError as exc:
        for error in exc.messages:
            messages.error(request, error)
        return redirect(back)
    name = (collector.get_full_name() or collector.get_username()) if collector else _("sin asignar")
    if changed:
        messages.success(
            request,
            ngettext(
                "%(count)d cliente reasignado a %(name)s.",
                "%(count)d clientes reasignados a %(name)s.",
                changed,
            )
            % {"count": changed, "name": name},
        )
    else:
        messages.info(request, _("Los clientes elegidos ya estaban asignados a %(name)s.") % {"name": name})
    return redirect(back)


# --- client create / edit ------------------------------------------------------------------


@manager_required
@require_http_methods(["GET", "POST"])
def client_create(request):
    form = ClientForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            client = services.client_create(by=request.user, **form.changes())
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, _("Cliente «%(name)s» dado de alta.") % {"name": client.display_name})
            return redirect(_detail_url(client))
    return render(
        request,
        "accounts/form_page.html",
        {
            "form": form,
            "title": _("Nuevo cliente"),
            "submit_label": _("Dar de alta"),
            "cancel_url": reverse("client_list"),
            "wide": True,
        },
    )


@manager_required
@require_http_methods(["GET", "POST"])
def client_edit(request, pk):
    client = _visible_client(request, pk)
    form = ClientForm(request.POST or None, instance=client)
    if request.method == "POST" and form.is_valid():
        try:
            services.client_update(by=request.user, client=client, **form.changes())
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, _("Datos del cliente guardados."))
            return redirect(_detail_url(client))
    return render(
        request,
        "accounts/form_page.html",
        {
            "form": form,
            "client": client,
            "title": _("Editar cliente"),
            "submit_label": _("Guardar cambios"),
            "cancel_url": _detail_url(client),
            "wide": True,
        },
    )


# --- client detail -------------------------------------------------------------------------


# The client page is a summary (always shown, a small constant number of queries) and six
# sections, each a tab loaded when it is opened (docs/domain.md#the-client-page): the
# section's own URL answers its HTML fragment; ``?tab=<section>`` renders the whole page with
# that section inline (no JavaScript needed, and the target of the redirects of forms posted
# from a section).
SECTIONS = ("facturas", "pagos", "historial", "contactos", "cobranza", "cambios")


def section_url(client_or_pk, tab: str, anchor: str = "") -> str:
    """The client page opened at ``tab``, scrolled to ``anchor`` (default: the section)."""
    pk = getattr(client_or_pk, "pk", client_or_pk)
    return f"{reverse('client_detail', args=[pk])}?tab={tab}#{anchor or 'seccion-' + tab}"


def _detail_url(client, tab: str = "") -> str:
    return section_url(client, tab) if tab else reverse("client_detail", args=[client.pk])


def _active_tab(request, kind: str) -> str:
    """The section a link opens inline: the one whose page or filter it turns, else
    ``?tab=``; none (the summary alone) by default."""
    if kind or "tpage" in request.GET:
        return "historial"
    if "fpage" in request.GET:
        return "facturas"
    if "ppage" in request.GET:
        return "pagos"
    tab = request.GET.get("tab", "")
    return tab if tab in SECTIONS else ""


INVOICES_PER_PAGE = 50
PAYMENTS_PER_PAGE = 50
HISTORY_ENTRIES = 25


class _CountedPaginator(Paginator):
    """A paginator told its count (read with the client itself): no COUNT query of its own."""

    def __init__(self, object_list, per_page, *, count: int):
        super().__init__(object_list, per_page)
        self.__dict__["count"] = count  # the cached_property, already known


def _tabs(client) -> list[tuple[str, str, str, int | None]]:
    """(section, label, icon, size) of the page's tabs; sizes come with the client."""
    return [
        ("facturas", _("Facturas"), "bi-receipt", client.invoice_total),
        ("pagos", _("Pagos"), "bi-cash-stack", client.payment_total),
        ("historial", _("Historial"), "bi-clock-history", client.interaction_total),
        ("contactos", _("Contactos"), "bi-person-lines-fill", client.contact_total),
        ("cobranza", _("Cobranza"), "bi-megaphone", None),
        ("cambios", _("Cambios"), "bi-journal-text", None),
    ]


def _detail_client(request, pk):
    """The client of the page and of its sections: the same lookup (visible to the user, else
    404) and the tabs' sizes read with it."""
    return get_object_or_404(
        selectors.with_detail_counts(
            selectors.clients_visible_to(request.user).select_related("segment", "collector", "business_group")
        ),
        pk=pk,
    )


def _timeline_kind(request) -> str:
    kind = request.GET.get("kind", "")
    return kind if kind in Interaction.Kind.values else ""


def _timeline_context(request, client, kind: str) -> dict:
    timeline = Paginator(selectors.client_timeline(client, kind=kind), TIMELINE_PER_PAGE).get_page(
        request.GET.get("tpage")
    )
    return {"client": client, "timeline": timeline, "kind": kind, "kinds": Interaction.Kind.choices}


def _section_context(request, client, tab: str) -> dict:
    """What one section shows; each costs a constant number of queries (asserted in tests)."""
    context = {"client": client, "tab": tab, "can_manage": is_manager(request.user)}
    if tab == "facturas":
        context["invoices"] = _CountedPaginator(
            selectors.client_invoices(client), INVOICES_PER_PAGE, count=client.invoice_total
        ).get_page(request.GET.get("fpage"))
    elif tab == "pagos":
        context["payments"] = _CountedPaginator(
            selectors.client_payments(client), PAYMENTS_PER_PAGE, count=client.payment_total
        ).get_page(request.GET.get("ppage"))
    elif tab == "historial":
        context.update(_timeline_context(request, client, _timeline_kind(request)))
    elif tab == "contactos":
        context["contacts"] = selectors.client_contacts(client)
    elif tab == "cobranza":
        context["section_panels"] = client_panels(request, client, section="cobranza")
    elif tab == "cambios":
        context["rows"] = audit.present(audit.client_history(client)[:HISTORY_ENTRIES])
    return context


@staff_required
@require_GET
def client_detail(request, pk):
    client = _detail_client(request, pk)
    kind = _timeline_kind(request)
    if _is_partial(request, "timeline"):
        response = render(request, "accounts/_timeline.html", _timeline_context(request, client, kind))
        patch_vary_headers(response, ["HX-Request"])
        return response

    active_tab = _active_tab(request, kind)
    response = render(
        request,
        "accounts/client_detail.html",
        {
            "client": client,
            "summary": selectors.client_summary(client),
            "last_contact": selectors.client_last_contact(client),
            "group_members": selectors.business_group_members(client=client, user=request.user),
            "can_manage": is_manager(request.user),
            "panels": client_panels(request, client),
            "outcome_url": outcome_form_url(client),
            "tabs": _tabs(client),
            "active_tab": active_tab,
            **(_section_context(request, client, active_tab) if active_tab else {}),
        },
    )
    patch_vary_headers(response, ["HX-Request"])
    return response


@staff_required
@require_GET
def client_section(request, pk, tab):
    """One section of the client page as an HTML fragment (the tab's content), for app.js to
    insert when the tab is opened. Same access as the page: a role, and the client visible."""
    if tab not in SECTIONS:
        raise Http404
    client = _detail_client(request, pk)
    response = render(request, "accounts/sections/section.html", _section_context(request, client, tab))
    response["Cache-Control"] = "no-store"
    return response


@staff_required
@require_POST
def client_apply_credit(request, pk):
    client = _visible_client(request, pk)
    applied = services.client_apply_credit(by=request.user, client=client)
    if applied:
        amounts = ", ".join(money_str(amount, currency) for currency, amount in sorted(applied.items()))
        messages.success(request, _("Saldo a favor aplicado a facturas pendientes: %(amount)s.") % {"amount": amounts})
    else:
        messages.info(request, _("No había facturas pendientes en la moneda del saldo a favor: no se aplicó nada."))
    return redirect(_detail_url(client, "facturas"))


# --- invoices ------------------------------------------------------------------------------


@manager_required
@require_http_methods(["GET", "POST"])
def invoice_create(request, pk):
    client = _visible_client(request, pk)
    form = InvoiceForm(request.POST or None, client=client)
    if request.method == "POST" and form.is_valid():
        try:
            invoice = services.invoice_create(by=request.user, client=client, **form.cleaned_data)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(
                request,
                _("Factura %(number)s registrada por %(amount)s.")
                % {"number": invoice.number, "amount": money_str(invoice.amount, invoice.currency)},
            )
            return redirect(_detail_url(client, "facturas"))
    return render(
        request,
        "accounts/form_page.html",
        {
            "form": form,
            "client": client,
            "title": _("Nueva factura"),
            "submit_label": _("Registrar factura"),
            "cancel_url": _detail_url(client, "facturas"),
        },
    )


@manager_required
@require_http_methods(["GET", "POST"])
def invoice_status(request, pk):
    invoice = get_object_or_404(selectors.invoices_visible_to(request.user), pk=pk)
    client = invoice.client
    form = InvoiceStatusForm(request.POST or None, invoice=invoice, initial={"status": request.GET.get("status")})
    if request.method == "POST" and form.is_valid():
        try:
            updated = services.invoice_set_status(
                by=request.user, invoice=invoice, status=form.cleaned_data["status"], reason=form.cleaned_data["reason"]
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(
                request,
                _("Factura %(number)s: %(status)s.")
                % {"number": updated.number, "status": updated.get_status_display()},
            )
            return redirect(_detail_url(client, "facturas"))
    return render(
        request,
        "accounts/invoice_status_form.html",
        {"form": form, "client": client, "invoice": invoice, "cancel_url": _detail_url(client, "facturas")},
    )


# --- payments ------------------------------------------------------------------------------


def _payment_message(payment, client) -> str:
    applied = ", ".join(
        f"{a.invoice.number} ({money_str(a.amount, payment.currency)})" for a in payment.allocations.all()
    )
    text = _("Pago de %(amount)s registrado.") % {"amount": money_str(payment.amount, payment.currency)}
    if applied:
        text += " " + _("Aplicado a: %(list)s.") % {"list": applied}
    if payment.unallocated > 0:
        text += " " + _("Queda como saldo a favor: %(credit)s.") % {
            "credit": money_str(payment.unallocated, payment.currency)
        }
    return text


@staff_required
@require_http_methods(["GET", "POST"])
def payment_create(request, pk):
    client = _visible_client(request, pk)
    if request.method == "POST" and _is_partial(request, "payment-preview"):
        return _payment_preview(request, client)
    form = PaymentForm(
        request.POST or None, client=client, open_invoices=selectors.open_invoices_for_allocation(client)
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            payment = services.payment_record(
                by=request.user,
                client=client,
                amount=data["amount"],
                received_on=data["received_on"],
                currency=data["currency"],
                method=data["method"],
                reference=data["reference"],
                allocations=form.allocations(),
                notes=data["notes"],
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            if not payment.created:
                messages.info(
                    request,
                    _("El pago con referencia %(ref)s ya estaba registrado; no se aplicó de nuevo.")
                    % {"ref": payment.reference},
                )
            else:
                payment = selectors.client_payments(client).get(pk=payment.pk)
                messages.success(request, _payment_message(payment, client))
            return redirect(_detail_url(client, "pagos"))
    return render(
        request,
        "accounts/payment_form.html",
        {
            "form": form,
            "client": client,
            "summary": selectors.client_summary(client),
            "cancel_url": _detail_url(client, "pagos"),
        },
    )


def _payment_preview(request, client):
    """The automatic allocation of the amount being typed, before anything is saved (POST:
    the amount is the collector's input, not something for a URL)."""
    form = PaymentForm(request.POST, client=client, open_invoices=())
    preview = None
    if form.is_bound:
        form.full_clean()
    amount, currency = form.cleaned_data.get("amount"), form.cleaned_data.get("currency")
    if amount and currency:
        preview = selectors.payment_preview(client, amount=amount, currency=currency.upper())
    return render(request, "accounts/_payment_preview.html", {"preview": preview, "client": client})


# --- interactions --------------------------------------------------------------------------


@staff_required
@require_http_methods(["GET", "POST"])
def interaction_create(request, pk):
    client = _visible_client(request, pk)
    form = InteractionForm(
        request.POST or None,
        client=client,
        contacts=selectors.client_contacts(client, active_only=True),
        invoices=selectors.client_invoices(client, include_closed=False),
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.interaction_log(by=request.user, client=client, **form.cleaned_data)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, _("Gestión registrada en el historial."))
            return redirect(_detail_url(client, "historial"))
    return render(
        request,
        "accounts/form_page.html",
        {
            "form": form,
            "client": client,
            "title": _("Registrar gestión"),
            "submit_label": _("Registrar gestión"),
            "cancel_url": _detail_url(client, "historial"),
        },
    )


# --- contacts ------------------------------------------------------------------------------


@staff_required
@require_http_methods(["GET", "POST"])
def contact_create(request, pk):
    client = _visible_client(request, pk)
    form = ContactForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        changes = form.changes()
        try:
            contact = services.contact_create(by=request.user, client=client, **changes)
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, _("Contacto «%(name)s» agregado.") % {"name": contact.name})
            return redirect(_detail_url(client, "contactos"))
    return render(
        request,
        "accounts/form_page.html",
        {
            "form": form,
            "client": client,
            "title": _("Nuevo contacto"),
            "submit_label": _("Guardar contacto"),
            "cancel_url": _detail_url(client, "contactos"),
        },
    )


@staff_required
@require_http_methods(["GET", "POST"])
def contact_edit(request, pk):
    contact = get_object_or_404(selectors.contacts_visible_to(request.user), pk=pk)
    client = contact.client
    form = ContactForm(request.POST or None, instance=contact)
    if request.method == "POST" and form.is_valid():
        try:
            services.contact_update(by=request.user, contact=contact, **form.changes())
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, _("Contacto «%(name)s» actualizado.") % {"name": contact.name})
            return redirect(_detail_url(client, "contactos"))
    return render(
        request,
        "accounts/form_page.html",
        {
            "form": form,
            "client": client,
            "title": _("Editar contacto"),
            "submit_label": _("Guardar cambios"),
            "cancel_url": _detail_url(client, "contactos"),
        },
    )


@require_http_methods(["GET", "POST"])
def my_preferences(request):
    """The signed-in user's own number format (docs/domain.md#number-formats)."""
    current = preferences.user_code(request)
    form = PreferenceForm(request.POST or None, initial={"number_format": current})
    if request.method == "POST" and form.is_valid():
        try:
            services.preference_update(by=request.user, number_format=form.cleaned_data["number_format"])
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            request.session[preferences.SESSION_KEY] = form.cleaned_data["number_format"]
            messages.success(request, _("Se guardaron sus preferencias."))
            return redirect("preferences")
    return render(
        request,
        "accounts/form_page.html",
        {"form": form, "title": _("Mis preferencias"), "cancel_url": reverse("home")},
    )
