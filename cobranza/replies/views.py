"""Debtors' replies over HTTP (docs/domain.md#replies).

Inbound webhooks (no login, no CSRF: the signature is the authentication, checked exactly like
the payment webhook's — ``accounts.payment_webhook.request_signed`` with
``INBOUND_WEBHOOK_SECRET``):

- ``POST /webhooks/respuestas/correo/``: the raw email (MIME) as the body;
- ``POST /webhooks/respuestas/sms/`` and ``/whatsapp/``: JSON
  ``{"from": "+52 55…", "text": "…", "id": "<provider message id>"}``.

Answers: 201 recorded (``matched`` says whether a client was found; unmatched messages are
kept for managers); 200 already recorded (same Message-ID or provider id); 400 unreadable
(MIME without a sender, JSON not an object, missing fields); 401 bad or missing signature, or a
stale timestamp; 413 larger than ``INBOUND_MAX_BYTES``; 422 a reply token that is not ours
(forged or damaged, or naming no client); 503 no secret configured. Every refusal is logged
(its code only: logs carry no personal data).

Staff pages: the client page's replies panel with *mark as read*, and the managers' list of
messages no client matched.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib import messages as flash
from django.contrib.auth.decorators import login_not_required
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from accounts import selectors as ledger_selectors
from accounts.models import Client
from accounts.payment_webhook import request_signed
from accounts.roles import is_staff_member
from accounts.utils import parse_json
from accounts.views import _safe_next, manager_required, staff_required
from cobranza.models import InboundMessage
from cobranza.replies import inbound, selectors, services, tokens

log = logging.getLogger(__name__)
MAX_PROVIDER_ID = 255
MAX_TEXT = 20_000


def _error(status: int, code: str, message: str, **extra) -> JsonResponse:
    log.warning("inbound webhook refused: %s (%s)", code, status)
    return JsonResponse({"error": code, "detail": message, **extra}, status=status)


def _guard(request) -> JsonResponse | None:
    """The checks every inbound webhook makes before reading the body."""
    secret = getattr(settings, "INBOUND_WEBHOOK_SECRET", "")
    if not secret:
        return _error(503, "disabled", _("Los webhooks de respuestas no están configurados."))
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > settings.INBOUND_MAX_BYTES or len(request.body) > settings.INBOUND_MAX_BYTES:
        return _error(413, "too_large", _("El mensaje es demasiado grande."))
    if not request_signed(request, secret):
        return _error(401, "bad_signature", _("Firma o marca de tiempo ausente, no válida o caducada."))
    return None


def _recorded(message: InboundMessage, created: bool) -> JsonResponse:
    return JsonResponse(
        {"id": message.pk, "created": created, "matched": message.client_id is not None, "client": message.client_id},
        status=201 if created else 200,
    )


@csrf_exempt
@login_not_required
@require_POST
def email_reply(request):
    refused = _guard(request)
    if refused:
        return refused
    try:
        parsed = inbound.parse(request.body)
    except inbound.UnreadableMessage:
        return _error(400, "unreadable", _("El cuerpo no es un correo legible (MIME con remitente)."))
    client_id = tokens.client_id_in_addresses(*parsed.recipients)
    if tokens.has_token(*parsed.recipients) and (client_id is None or not Client.objects.filter(pk=client_id).exists()):
        return _error(422, "unknown_token", _("La dirección de respuesta no corresponde a ningún cliente."))
    message, created = services.inbound_record(
        channel=InboundMessage.Channel.EMAIL,
        provider_id=parsed.message_id,
        sender=parsed.sender,
        recipient=", ".join(parsed.recipients),
        subject=parsed.subject,
        body=parsed.text,
        token_client_id=client_id,
        received_at=parsed.sent_at,
    )
    return _recorded(message, created)


def _text_webhook(request, channel: str):
    refused = _guard(request)
    if refused:
        return refused
    try:
        payload = parse_json(request.body)
    except ValueError:
        return _error(400, "invalid", _("El cuerpo no es JSON válido."))
    if not isinstance(payload, dict):
        return _error(400, "invalid", _("El cuerpo debe ser un objeto JSON."))
    errors = {}
    fields = {}
    for name, limit in (("from", 64), ("text", MAX_TEXT), ("id", MAX_PROVIDER_ID)):
        value = payload.get(name)
        if not isinstance(value, str) or not value.strip():
            errors[name] = [_("Este campo es obligatorio y debe ser texto.")]
        elif len(value) > limit:
            errors[name] = [_("Demasiado largo.")]
        else:
            fields[name] = value.strip()
    if errors:
        log.warning("inbound webhook refused: invalid (400)")
        return JsonResponse({"error": "invalid", "errors": errors}, status=400)
    message, created = services.inbound_record(
        channel=channel, provider_id=fields["id"], sender=fields["from"], body=fields["text"]
    )
    return _recorded(message, created)


@csrf_exempt
@login_not_required
@require_POST
def sms_reply(request):
    return _text_webhook(request, InboundMessage.Channel.SMS)


@csrf_exempt
@login_not_required
@require_POST
def whatsapp_reply(request):
    return _text_webhook(request, InboundMessage.Channel.WHATSAPP)


# --- staff ---------------------------------------------------------------------------------


def replies_panel(request, client) -> str:
    """The client page's panel of the client's latest replies, unread ones marked (one query)."""
    if not is_staff_member(request.user):
        return ""
    replies = selectors.client_replies(client)
    if not replies:
        return ""
    return render_to_string(
        "cobranza/replies/_panel.html",
        {
            "replies": replies,
            "unread": sum(1 for r in replies if r.unread),
            "next_url": reverse("client_detail", args=[client.pk]) + "#respuestas",
        },
        request=request,
    )


@staff_required
@require_POST
def reply_mark_read(request, pk: int):
    message = get_object_or_404(InboundMessage.objects.select_related("client"), pk=pk, client__isnull=False)
    if not ledger_selectors.clients_visible_to(request.user).filter(pk=message.client_id).exists():
        raise Http404
    services.reply_mark_read(by=request.user, message=message)
    flash.success(request, _("Respuesta marcada como leída."))
    return redirect(_safe_next(request, reverse("client_detail", args=[message.client_id]) + "#respuestas"))


@manager_required
@require_GET
def unmatched_list(request):
    return render(request, "cobranza/replies/unmatched.html", {"messages_in": selectors.unmatched()})
