"""Outgoing webhook pages (administrators only): the endpoints with their recent delivery
figures, create / edit / deactivate / delete, the signing secret and its rotation, a test
event, and each endpoint's deliveries with a "retry now" for the failed ones.

The test event is sent during the request, outside any transaction and with the webhook
timeout, because the administrator is waiting to see whether the receiver answers; every
other event goes through the workers.
"""

from __future__ import annotations

import datetime as dt
import functools
import json

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, Max, Q
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import clock
from accounts.roles import is_admin
from cobranza.models import WebhookDelivery, WebhookDeliveryStatus, WebhookEndpoint, WebhookEvent
from cobranza.webhooks import outgoing as webhooks_out
from cobranza.webhooks import services as webhooks_services
from cobranza.webhooks.forms import EndpointForm

STATS_DAYS = 7
Status = WebhookDeliveryStatus


def admin_required(view):
    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if not is_admin(request.user):
            raise PermissionDenied(_("Esta acción requiere el rol de administrador."))
        return view(request, *args, **kwargs)

    return wrapper


def _with_stats(queryset):
    """Each endpoint with its last week's deliveries by status, in the same query."""
    since = clock.now() - dt.timedelta(days=STATS_DAYS)
    recent = Q(deliveries__created_at__gte=since)
    return queryset.annotate(
        delivered_count=Count("deliveries", filter=recent & Q(deliveries__status=Status.DELIVERED)),
        failed_count=Count("deliveries", filter=recent & Q(deliveries__status=Status.FAILED)),
        pending_count=Count("deliveries", filter=Q(deliveries__status__in=[Status.PLANNED, Status.SENDING])),
        last_delivery_at=Max("deliveries__created_at"),
    )


def _event_labels(endpoint: WebhookEndpoint) -> list[str]:
    labels = dict(WebhookEvent.choices)
    return [labels.get(e, e) for e in endpoint.events]


@require_GET
@admin_required
def webhook_list(request):
    endpoints = list(_with_stats(WebhookEndpoint.objects.select_related("created_by")).order_by("name", "pk"))
    for endpoint in endpoints:
        endpoint.event_labels = _event_labels(endpoint)
    return render(request, "cobranza/integrations/list.html", {"endpoints": endpoints, "stats_days": STATS_DAYS})


def _save(request, form: EndpointForm, endpoint: WebhookEndpoint | None):
    data = form.cleaned_data
    try:
        if endpoint is None:
            return webhooks_services.endpoint_create(
                by=request.user,
                name=data["name"],
                url=data["url"],
                events=data["events"],
                is_active=data["is_active"],
            )
        return webhooks_services.endpoint_update(
            by=request.user,
            endpoint=endpoint,
            name=data["name"],
            url=data["url"],
            events=data["events"],
            is_active=data["is_active"],
        )
    except ValidationError as exc:
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
        return None


@require_http_methods(["GET", "POST"])
@admin_required
def webhook_create(request):
    form = EndpointForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        endpoint = _save(request, form, None)
        if endpoint is not None:
            messages.success(
                request,
                _("Webhook creado. Copie su secreto de firma para verificar los envíos en el sistema que los recibe."),
            )
            return redirect("cobranza:webhook_detail", pk=endpoint.pk)
    return render(request, "cobranza/integrations/form.html", {"form": form, "endpoint": None})


@require_http_methods(["GET", "POST"])
@admin_required
def webhook_edit(request, pk):
    endpoint = get_object_or_404(WebhookEndpoint, pk=pk)
    initial = {"name": endpoint.name, "url": endpoint.url, "events": endpoint.events, "is_active": endpoint.is_active}
    form = EndpointForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid() and _save(request, form, endpoint) is not None:
        messages.success(request, _("Webhook guardado."))
        return redirect("cobranza:webhook_detail", pk=endpoint.pk)
    return render(request, "cobranza/integrations/form.html", {"form": form, "endpoint": endpoint})


@require_GET
@admin_required
def webhook_detail(request, pk):
    endpoint = get_object_or_404(_with_stats(WebhookEndpoint.objects.select_related("created_by")), pk=pk)
    endpoint.event_labels = _event_labels(endpoint)
    status = request.GET.get("estado", "")
    deliveries = endpoint.deliveries.order_by("-created_at", "-pk")
    if status in Status.values:
        deliveries = deliveries.filter(status=status)
    else:
        status = ""
    page = Paginator(deliveries, 25).get_page(request.GET.get("page"))
    for delivery in page.object_list:
        delivery.payload_json = json.dumps(delivery.payload, indent=2, ensure_ascii=False)
    return render(
        request,
        "cobranza/integrations/detail.html",
        {
            "endpoint": endpoint,
            "page": page,
            "deliveries": page.object_list,
            "status": status,
            "status_filters": [("", _("Todas")), *Status.choices],
            "stats_days": STATS_DAYS,
            "max_attempts": webhooks_out.MAX_ATTEMPTS,
        },
    )


@require_POST
@admin_required
def webhook_toggle(request, pk):
    endpoint = get_object_or_404(WebhookEndpoint, pk=pk)
    webhooks_services.endpoint_set_active(by=request.user, endpoint=endpoint, active=not endpoint.is_active)
    if endpoint.is_active:
        messages.success(request, _("Webhook activado: recibirá los próximos eventos."))
    else:
        messages.success(request, _("Webhook desactivado: no recibirá más eventos hasta que lo active."))
    return redirect("cobranza:webhook_detail", pk=endpoint.pk)


@require_POST
@admin_required
def webhook_rotate_secret(request, pk):
    endpoint = get_object_or_404(WebhookEndpoint, pk=pk)
    webhooks_services.endpoint_rotate_secret(by=request.user, endpoint=endpoint)
    messages.warning(
        request,
        _("Secreto renovado. Los próximos envíos se firman con el nuevo: actualícelo en el sistema que los recibe."),
    )
    return redirect("cobranza:webhook_detail", pk=endpoint.pk)


@require_POST
@admin_required
def webhook_ping(request, pk):
    endpoint = get_object_or_404(WebhookEndpoint, pk=pk)
    try:
        delivery = webhooks_services.endpoint_ping(by=request.user, endpoint=endpoint)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("cobranza:webhook_detail", pk=endpoint.pk)
    outcome = webhooks_out.deliver(delivery.pk)  # autocommit: no transaction is open here
    delivery.refresh_from_db()
    if outcome == webhooks_out.Outcome.DELIVERED:
        messages.success(
            request,
            _("Evento de prueba entregado (HTTP %(code)s).") % {"code": delivery.last_status_code},
        )
    elif outcome == webhooks_out.Outcome.RETRY:
        messages.warning(
            request,
            _("El evento de prueba no se entregó (%(error)s); se reintentará automáticamente.")
            % {"error": delivery.last_error},
        )
    else:
        messages.error(request, _("El evento de prueba fue rechazado: %(error)s") % {"error": delivery.last_error})
    return redirect("cobranza:webhook_detail", pk=endpoint.pk)


@require_POST
@admin_required
def webhook_delivery_retry(request, pk):
    delivery = get_object_or_404(WebhookDelivery, pk=pk)
    try:
        webhooks_services.delivery_retry(by=request.user, delivery=delivery)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, _("Entrega en cola: se enviará de nuevo en unos segundos."))
    return redirect("cobranza:webhook_detail", pk=delivery.endpoint_id)


@require_http_methods(["GET", "POST"])
@admin_required
def webhook_delete(request, pk):
    endpoint = get_object_or_404(_with_stats(WebhookEndpoint.objects.all()), pk=pk)
    if request.method == "POST":
        name = endpoint.name
        webhooks_services.endpoint_delete(by=request.user, endpoint=endpoint)
        messages.success(request, _("Webhook «%(name)s» eliminado con su historial de entregas.") % {"name": name})
        return redirect("cobranza:webhook_list")
    return render(request, "cobranza/integrations/delete.html", {"endpoint": endpoint})
