"""Payment webhook: HMAC-signed, idempotent by reference, allocated, and reminders stop."""

import datetime as dt
import hashlib
import hmac
import json
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse

from accounts import services as ledger
from accounts.models import Interaction, Payment
from cobranza.engine import dispatch
from cobranza.engine.planner import plan
from cobranza.models import MessageTemplate, MessageTemplateText, Notice, Policy, PolicyStep
from tests.factories import make_client, make_invoice, segment

pytestmark = pytest.mark.django_db
SECRET = "s3cr3t-de-prueba"
URL = "/webhooks/pagos/"
MX = ZoneInfo("America/Mexico_City")
DUE = dt.date(2026, 3, 2)  # a Monday, no holiday
AT_10 = dt.datetime.combine(DUE + dt.timedelta(days=1), dt.time(10, 0), tzinfo=MX)


@pytest.fixture(autouse=True)
def _secret(settings):
    settings.PAYMENT_WEBHOOK_SECRET = SECRET


@pytest.fixture
def debtor(gerente, gestora):
    client = make_client(by=gerente, collector=gestora, legal_name="Ferretería El Clavo", tax_id="FEC010203AB1")
    ledger.contact_create(by=gerente, client=client, name="Rosa Pagos", email="rosa@clavo.example")
    make_invoice(by=gerente, client=client, number="FC-1", amount="1500.00", due_date=DUE)
    make_invoice(by=gerente, client=client, number="FC-2", amount="500.00", due_date=DUE + dt.timedelta(days=5))
    return client


def _sign(body: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _post(client, payload, *, signature=None, raw: bytes | None = None):
    body = raw if raw is not None else json.dumps(payload).encode()
    headers = {} if signature == "" else {"X-Morosos-Signature": signature or _sign(body)}
    return client.post(URL, data=body, content_type="application/json", headers=headers)


def _payload(**over):
    data = {"reference": "SPEI-0001", "tax_id": "FEC010203AB1", "amount": "2000.00", "currency": "MXN"}
    data["received_on"] = DUE.isoformat()
    data.update(over)
    return data


def test_the_url_is_named():
    assert reverse("webhooks:payments") == URL


def test_a_signed_payment_is_recorded_once_and_allocated_oldest_first(client, debtor):
    response = _post(client, _payload())
    assert response.status_code == 201, response.content
    body = response.json()
    payment = Payment.objects.get()
    assert body["payment"] == payment.pk and body["created"] is True
    assert payment.recorded_by is None and payment.reference == "SPEI-0001"
    assert [a["invoice"] for a in body["allocations"]] == ["FC-1", "FC-2"]
    assert set(debtor.invoices.values_list("status", flat=True)) == {"paid"}


def test_a_replay_returns_the_same_payment_and_records_nothing_new(client, debtor):
    first = _post(client, _payload()).json()
    timeline = Interaction.objects.count()
    again = _post(client, _payload())
    assert again.status_code == 200
    assert again.json()["payment"] == first["payment"] and again.json()["created"] is False
    assert Payment.objects.count() == 1 and Interaction.objects.count() == timeline


def test_named_invoices_take_the_money_and_the_rest_stays_as_credit(client, debtor):
    response = _post(client, _payload(reference="R-2", amount="700.00", client_id=debtor.pk, invoices=["FC-2"]))
    assert response.status_code == 201
    assert response.json()["allocations"] == [{"invoice": "FC-2", "amount": "500.00"}]
    assert response.json()["unallocated"] == "200.00"
    assert debtor.invoices.get(number="FC-1").status == "open"


def test_a_bad_or_missing_signature_is_401(client, debtor):
    body = json.dumps(_payload()).encode()
    assert _post(client, None, raw=body, signature=_sign(body, "otro-secreto")).status_code == 401
    assert _post(client, None, raw=body, signature="").status_code == 401
    # Signed, then tampered with: the signature no longer matches.
    sig = _sign(body)
    assert _post(client, None, raw=body.replace(b"2000.00", b"9000.00"), signature=sig).status_code == 401
    assert not Payment.objects.exists()


def test_without_a_secret_the_webhook_is_off(client, debtor, settings):
    settings.PAYMENT_WEBHOOK_SECRET = ""
    response = _post(client, _payload(), signature=_sign(json.dumps(_payload()).encode(), ""))
    assert response.status_code == 503
    assert not Payment.objects.exists()


@pytest.mark.parametrize(
    ("over", "field", "message"),
    [
        ({"currency": "ZZZ"}, "currency", "no es un código de moneda ISO 4217"),
        ({"amount": "10000000000.00"}, "amount", "supera el máximo permitido"),
    ],
)
def test_an_unknown_currency_or_an_amount_over_the_limit_is_a_field_error(client, debtor, over, field, message):
    response = _post(client, _payload(**over))
    assert response.status_code == 400
    assert message in " ".join(response.json()["errors"][field])
    assert not Payment.objects.exists()


def test_a_malformed_payload_is_400_with_field_errors(client, debtor):
    response = _post(
        client,
        {"reference": "", "amount": "mucho", "currency": "PESOS", "received_on": "02/03/2026", "invoices": "FC-1"},
    )
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert {"reference", "amount", "currency", "received_on", "client_id", "invoices"} <= set(errors)
    not_json = _post(client, None, raw=b"{no es json")
    assert not_json.status_code == 400 and "body" in not_json.json()["errors"]
    assert _post(client, None, raw=b"[1, 2]").status_code == 400
    assert not Payment.objects.exists()


def test_a_known_reference_for_a_different_payment_is_400(client, debtor):
    _post(client, _payload())
    response = _post(client, _payload(amount="10.00"))
    assert response.status_code == 400 and "reference" in response.json()["errors"]


def test_an_unknown_client_or_invoice_is_404(client, debtor):
    response = _post(client, _payload(tax_id="NOEXISTE000"))
    assert response.status_code == 404 and response.json()["error"] == "unknown_client"
    response = _post(client, _payload(invoices=["FC-1", "AJENA-9"]))
    assert response.status_code == 404 and response.json()["invoices"] == ["AJENA-9"]
    assert not Payment.objects.exists()


def test_only_post_and_no_login_or_csrf_needed(client, debtor):
    assert client.get(URL).status_code == 405
    csrf_client = client.__class__(enforce_csrf_checks=True)
    assert _post(csrf_client, _payload()).status_code == 201


@pytest.fixture
def ladder(db):
    Policy.objects.filter(segment=segment("regular")).delete()
    policy = Policy.objects.create(name="Prueba webhook", segment=segment("regular"))
    tpl = MessageTemplate.objects.create(code="t-wh", name="t-wh", channel="email")
    MessageTemplateText.objects.create(
        template=tpl, language="es", subject="Saldo de {{ cliente }}", body="Saldo pendiente de {{ cliente }}."
    )
    PolicyStep.objects.create(policy=policy, position=1, name="Paso 1", offset_days=1, channel="email", template=tpl)
    return policy


def test_a_planned_reminder_is_skipped_once_the_webhook_pays_the_invoice(client, ladder, debtor, outbox):
    plan(today=DUE + dt.timedelta(days=1), now=AT_10)
    notice = Notice.objects.get(client=debtor)
    assert notice.status == "planned"
    response = _post(client, _payload(invoices=["FC-1"], amount="1500.00"))
    assert response.status_code == 201
    [result] = [dispatch.dispatch(i, now=AT_10) for i in dispatch.due_notice_ids(now=AT_10)]
    assert result.outcome == "skipped"
    notice.refresh_from_db()
    assert notice.status == "skipped"
    assert debtor.invoices.get(number="FC-1").status == "paid"
    assert Decimal(response.json()["unallocated"]) == 0
