"""Payment webhook: HMAC-signed, idempotent by reference, allocated, and reminders stop."""

import datetime as dt
import hashlib
import hmac
import json
import time
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
# Inside the window and after every client's slot (docs/domain.md#spread): messages are due.
AT_21 = dt.datetime.combine(DUE + dt.timedelta(days=1), dt.time(21, 0), tzinfo=MX)


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


def _sign(body: bytes, secret: str = SECRET, timestamp: str | None = None) -> str:
    """What a sender does: HMAC-SHA256 of "<timestamp>.<body>"."""
    timestamp = timestamp or str(int(time.time()))
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def _post(client, payload, *, signature=None, raw: bytes | None = None, timestamp: str | None = None):
    body = raw if raw is not None else json.dumps(payload).encode()
    timestamp = timestamp or str(int(time.time()))
    headers = {"X-Signature-Timestamp": timestamp}
    if signature != "":
        headers["X-Signature"] = signature or _sign(body, timestamp=timestamp)
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
    plan(today=DUE + dt.timedelta(days=1), now=AT_21)
    notice = Notice.objects.get(client=debtor)
    assert notice.status == "planned"
    response = _post(client, _payload(invoices=["FC-1"], amount="1500.00"))
    assert response.status_code == 201
    [result] = [dispatch.dispatch(i, now=AT_21) for i in dispatch.due_notice_ids(now=AT_21)]
    assert result.outcome == "skipped"
    notice.refresh_from_db()
    assert notice.status == "skipped"
    assert debtor.invoices.get(number="FC-1").status == "paid"
    assert Decimal(response.json()["unallocated"]) == 0


# --- malformed bodies and replays (security findings 7 and 10, docs/security.md) -------------

DEEP = b'{"a":' * 50_000 + b"1" + b"}" * 50_000


@pytest.mark.parametrize(
    "raw",
    [
        DEEP,  # RecursionError inside json: was a 500
        b"[" * 50_000 + b"]" * 50_000,
        b'{"a":' * 50_000,  # deep and unterminated
        b'"un texto"',
        b"42",
        b"null",
        b"[]",
        b'{"reference": "\xff\xfe"}',  # not UTF-8
        b'{"reference": "R", "amount": NaN}',
        b"",
    ],
)
def test_a_signed_body_that_is_not_a_json_object_is_400_whatever_its_shape(client, debtor, raw):
    response = _post(client, None, raw=raw)
    assert response.status_code == 400, response.content[:200]
    assert "body" in response.json()["errors"]
    assert not Payment.objects.exists()


def test_the_signature_covers_the_timestamp(client, debtor):
    body = json.dumps(_payload()).encode()
    now = str(int(time.time()))
    # Signed for another moment, sent with this one: the timestamp cannot be swapped.
    other = str(int(now) - 10)
    assert _post(client, None, raw=body, timestamp=now, signature=_sign(body, timestamp=other)).status_code == 401
    # The old body-only signature is refused.
    body_only = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert _post(client, None, raw=body, timestamp=now, signature=body_only).status_code == 401
    assert not Payment.objects.exists()
    # Signed with this timestamp: accepted, also as "sha256=<hex>" under the older header name.
    signed = _sign(body, timestamp=now)
    response = client.post(
        URL,
        data=body,
        content_type="application/json",
        headers={"X-Signature-Timestamp": now, "X-Morosos-Signature": "sha256=" + signed},
    )
    assert response.status_code == 201


@pytest.mark.parametrize("age", [301, 3600, -301])
def test_an_old_or_future_timestamp_is_refused_even_with_a_good_signature(client, debtor, age):
    timestamp = str(int(time.time()) - age)
    response = _post(client, _payload(), timestamp=timestamp)
    assert response.status_code == 401 and response.json()["error"] == "bad_signature"
    assert not Payment.objects.exists()


def test_a_fresh_timestamp_within_the_tolerance_is_accepted(client, debtor, settings):
    assert _post(client, _payload(), timestamp=str(int(time.time()) - 290)).status_code == 201
    settings.PAYMENT_WEBHOOK_TOLERANCE_SECONDS = 30
    assert _post(client, _payload(reference="R-2"), timestamp=str(int(time.time()) - 60)).status_code == 401


@pytest.mark.parametrize("timestamp", ["", "ayer", "1.5e9", "-5", "9" * 40])
def test_a_missing_or_malformed_timestamp_is_refused(client, debtor, timestamp):
    body = json.dumps(_payload()).encode()
    response = client.post(
        URL,
        data=body,
        content_type="application/json",
        headers={"X-Signature-Timestamp": timestamp, "X-Signature": _sign(body, timestamp=timestamp or "0")},
    )
    assert response.status_code == 401
