"""Payment webhook: a bank or payment provider posts payments, we record them.

``POST /webhooks/pagos/`` with a JSON body::

    {"reference": "SPEI-123", "client_id": 42 | "tax_id": "ABC010203XY1",
     "amount": "1500.00", "currency": "MXN", "received_on": "2026-03-02",
     "invoices": ["F-001", "F-002"],   # optional: apply to these, oldest due first
     "method": "transfer"}             # optional

and ``X-Morosos-Signature: <hex HMAC-SHA256 of the raw body with PAYMENT_WEBHOOK_SECRET>``.

Answers: 201 recorded; 200 already recorded under that reference (the same payment id,
nothing new); 400 malformed, with field errors; 401 bad or missing signature; 404 unknown
client or invoice; 503 no secret configured (the endpoint is off). Recording goes through
``accounts.services.payment_record`` (idempotent by reference); reminders for the paid
invoices stop because dispatch re-checks balances before sending.

No session, no CSRF token and no login: the signature is the authentication.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import ValidationError
from django.http import JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from accounts import services as ledger
from accounts.forms import PaymentWebhookForm
from accounts.models import Client, Invoice, Payment

SIGNATURE_HEADER = "X-Morosos-Signature"
MAX_INVOICES = 500


def signature_for(body: bytes, secret: str) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _error(status: int, code: str, message: str, **extra) -> JsonResponse:
    return JsonResponse({"error": code, "detail": message, **extra}, status=status)


def _field_errors(errors: dict) -> JsonResponse:
    return JsonResponse({"error": "invalid", "errors": errors}, status=400)


def _scalar(value):
    # Forms expect strings; JSON numbers become their text, anything else is refused.
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return str(value)
    return None


@csrf_exempt
@login_not_required
@require_POST
def payments(request):
    secret = getattr(settings, "PAYMENT_WEBHOOK_SECRET", "")
    if not secret:
        return _error(503, "disabled", _("El webhook de pagos no está configurado."))
    given = request.headers.get(SIGNATURE_HEADER, "").strip().lower()
    if not given or not hmac.compare_digest(signature_for(request.body, secret), given):
        return _error(401, "bad_signature", _("Firma ausente o no válida."))

    try:
        payload = json.loads(request.body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return _field_errors({"body": [_("El cuerpo no es JSON válido.")]})
    if not isinstance(payload, dict):
        return _field_errors({"body": [_("El cuerpo debe ser un objeto JSON.")]})

    form = PaymentWebhookForm(data={name: _scalar(payload.get(name)) for name in PaymentWebhookForm.base_fields})
    errors = {}
    if not form.is_valid():
        errors.update({field: [e["message"] for e in errs] for field, errs in form.errors.get_json_data().items()})
    numbers = payload.get("invoices") or []
    if not isinstance(numbers, list) or not all(isinstance(n, str) and n.strip() for n in numbers):
        errors["invoices"] = [_("Debe ser una lista de folios.")]
    elif len(numbers) > MAX_INVOICES:
        errors["invoices"] = [_("Demasiadas facturas en un pago.")]
    if errors:
        return _field_errors(errors)
    data = form.cleaned_data

    if data.get("client_id"):
        client = Client.objects.filter(pk=data["client_id"]).first()
    else:
        client = Client.objects.filter(tax_id__iexact=data["tax_id"].strip()).first()
    if client is None:
        return _error(404, "unknown_client", _("Cliente desconocido."))

    allocations = None  # default: oldest due first across the client's open invoices
    if numbers:
        invoices = list(client.invoices.filter(number__in={n.strip() for n in numbers}).order_by("due_date", "id"))
        missing = sorted({n.strip() for n in numbers} - {inv.number for inv in invoices})
        if missing:
            return _error(404, "unknown_invoice", _("Facturas desconocidas para este cliente."), invoices=missing)
        allocations = _allocate(invoices, data["amount"])

    try:
        payment = ledger.payment_record(
            by=None,
            client=client,
            amount=data["amount"],
            currency=data["currency"],
            received_on=data["received_on"],
            reference=data["reference"],
            method=data.get("method") or Payment.Method.TRANSFER,
            allocations=allocations,
            notes=_("Recibido por el webhook de pagos."),
        )
    except ValidationError as exc:
        if hasattr(exc, "error_dict"):
            return _field_errors({k: [str(m) for m in v] for k, v in exc.message_dict.items()})
        return _field_errors({"__all__": exc.messages})

    created = getattr(payment, "created", False)
    return JsonResponse(
        {
            "payment": payment.pk,
            "created": created,
            "client": client.pk,
            "amount": str(payment.amount),
            "currency": payment.currency,
            "unallocated": str(payment.unallocated),
            "allocations": [
                {"invoice": a.invoice.number, "amount": str(a.amount)}
                for a in payment.allocations.select_related("invoice").order_by("invoice__due_date", "id")
            ],
        },
        status=201 if created else 200,
    )


def _allocate(invoices: list[Invoice], amount: Decimal) -> list[ledger.AllocationRequest]:
    """The named invoices, oldest due first, each up to its open balance; the rest stays as
    client credit. Paid or cancelled invoices take nothing."""
    left = amount
    requests = []
    for invoice in invoices:
        if left <= 0:
            break
        if invoice.status not in (Invoice.Status.OPEN, Invoice.Status.PARTIALLY_PAID):
            continue
        take = min(invoice.open_balance, left)
        if take > 0:
            requests.append(ledger.AllocationRequest(invoice.pk, take))
            left -= take
    return requests
