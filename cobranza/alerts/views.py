"""Early warnings in the browser: the alerts list, the alerts panel of the client page and
the acknowledge/close action they post to.

Same access rules as ``accounts.views``: a login and a staff role; a collector sees and
handles only their own clients' alerts (another client's alert is a 404). Reads come from
``cobranza.alerts.selectors``; writes go through ``cobranza.alerts.services``, which checks
permissions again.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from accounts import clock
from accounts.roles import is_manager, is_staff_member
from accounts.views import _safe_next, staff_required
from cobranza.alerts import jobs, selectors, services
from cobranza.alerts.forms import AlertFilterForm, AlertUpdateForm
from cobranza.exports import DATE, Column, Table, export_format, table_response
from cobranza.models import AlertKind

ALERTS_PER_PAGE = 50


def alerts_panel(request, client) -> str:
    """The client page's panel of alerts not yet closed (one query; nothing when none)."""
    if not is_staff_member(request.user):
        return ""
    pending = selectors.client_alerts(client)
    if not pending:
        return ""
    return render_to_string(
        "cobranza/_alerts_panel.html",
        {
            "alerts": pending,
            "client": client,
            "next_url": reverse("client_detail", args=[client.pk]) + "#alertas",
        },
        request=request,
    )


@staff_required
@require_GET
def alert_list(request):
    form = AlertFilterForm(request.GET, manager=is_manager(request.user))
    filters = form.filters()
    if fmt := export_format(request):
        # Every alert the filters select (not just this page), in the same order.
        table = alert_table(selectors.alert_list(user=request.user, **filters))
        return table_response(table, filename=f"alertas-{clock.localdate():%Y%m%d}", fmt=fmt)
    paginator = Paginator(selectors.alert_list(user=request.user, **filters), ALERTS_PER_PAGE)
    page = paginator.get_page(request.GET.get("page"))
    return render(
        request,
        "cobranza/alerts/list.html",
        {
            "form": form,
            "page_obj": page,
            "alerts": selectors.with_evidence(page.object_list),
            "is_filtered": bool(filters["kind"] or filters["collector"] or filters["status"] != selectors.PENDING),
            "next_url": request.get_full_path(),
            "rules": [(kind, label, jobs.RULE_TEXTS[kind]) for kind, label in AlertKind.choices],
        },
    )


def alert_table(queryset) -> Table:
    """The alert list as a report table (CSV/XLSX): one query."""
    return Table(
        title=_("Alertas tempranas"),
        columns=[
            Column("raised_on", _("Detectada el"), DATE),
            Column("client", _("Cliente")),
            Column("collector", _("Gestor")),
            Column("kind", _("Tipo")),
            Column("title", _("Alerta")),
            Column("status", _("Estado")),
        ],
        rows=[
            {
                "raised_on": alert.raised_on,
                "client": alert.client.display_name,
                "collector": (alert.client.collector.get_full_name() or alert.client.collector.username)
                if alert.client.collector
                else "",
                "kind": alert.get_kind_display(),
                "title": alert.title,
                "status": alert.get_status_display(),
            }
            for alert in queryset
        ],
    )


@staff_required
@require_POST
def alert_update(request, pk):
    alert = get_object_or_404(selectors.alert_list(user=request.user, status="all"), pk=pk)
    target = _safe_next(request, reverse("cobranza:alert_list"))
    form = AlertUpdateForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Elija qué hacer con la alerta."))
        return redirect(target)
    try:
        if form.cleaned_data["action"] == "acknowledge":
            services.alert_acknowledge(by=request.user, alert=alert)
            messages.success(request, _("Alerta marcada como vista."))
        else:
            services.alert_close(by=request.user, alert=alert, note=form.cleaned_data["note"])
            messages.success(request, _("Alerta cerrada."))
    except ValidationError as exc:
        for error in exc.messages:
            messages.error(request, error)
    return redirect(target)
