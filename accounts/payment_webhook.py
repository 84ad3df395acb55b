"""Payment webhook: a bank or payment provider posts payments, we record them.

``POST /webhooks/pagos/`` with a JSON body::

    {"reference": "SPEI-123", "client_id": 42 | "tax_id": "ABC010203XY1",
     "amount": "1500.00", "currency": "MXN", "received_on": "2026-03-02",
     "invoices": ["F-001", "F-002"],   # optional: apply to these, oldest due first
     "method": "transfer"}             # optional

and two headers:

- ``X-Signature-Timestamp: <Unix seconds when the request was signed>``;
- ``X-Signature: <hex HMAC-SHA256(PAYMENT_WEBHOOK_SECRET, "<timestamp>.<raw body>")>``
  (``sha256=<hex>`` is accepted too; so is the older header name ``X-Morosos-Signature``).

The signature covers the timestamp, and a timestamp more than
``PAYMENT_WEBHOOK_TOLERANCE_SECONDS`` (300 by default) away from our clock is refused, so a
captured request cannot be replayed later. (Before this, the signature covered the body only:
senders must now sign ``"<timestamp>.<body>"``.)

Answers: 201 recorded; 200 already recorded under that reference (the same payment id,
nothing new); 400 malformed — any body that is not a JSON object (bad syntax, invalid UTF-8,
nested too deeply…) or bad fields, with field errors; 401 bad or missing signature, or a
timestamp missing or outside the tolerance; 404 unknown client or invoice; 503 no secret
configured (the endpoint is off). Recording goes through
``accounts.services.payment_record`` (idempotent by reference); reminders for the paid
invoices stop because dispatch re-checks balances before sending.

No session, no CSRF token and no login: the signature is the authentication.
"""

from __future__ import annotations

import hmac
import time
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
from accounts.utils import parse_json, webhook_signature

SIGNATURE_HEADER = "X-Signature"
LEGACY_SIGNATURE_HEADER = "X-Morosos-Signature"
TIMESTAMP_HEADER = "X-Signature-Timestamp"
MAX_INVOICES = 500


def tolerance_seconds() -> int:
    return int(getattr(settings, "PAYMENT_WEBHOOK_TOLERANCE_SECONDS", 300))


def request_signed(request, secret: str) -> bool:
    """A signature of this timestamp and body with our secret, and a timestamp within the
    tolerance of our clock (either way: a sender's clock may run a little ahead)."""
    timestamp = request.headers.get(TIMESTAMP_HEADER, "").strip()
    given = (request.headers.get(SIGNATURE_HEADER) or request.headers.get(LEGACY_SIGNATURE_HEADER) or "").strip()
    given = given.lower().removeprefix("sha256=")
    if not timestamp.isdigit() or len(timestamp) > 12 or not given:
        return False
    if not hmac.compare_digest(webhook_signature(secret, timestamp, request.body), given):
        return False
    return abs(time.time() - int(timestamp)) <= tolerance_seconds()


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
    if not request_signed(request, secret):
        return _error(401, "bad_signature", _("Firma o marca de tiempo ausente, no válida o caducada."))

    try:
        payload = parse_json(request.body)
    except ValueError:
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
