"""REST API v1: roles, visibility, writes through the services, idempotency, structured
errors, filtering, pagination, constant query counts and the OpenAPI schema."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts import services
from accounts.models import Interaction, Invoice, Payment
from cobranza.models import CollectorTask, Commitment, Dispute, IdempotencyKey, Notice, Policy
from cobranza.workspace import services as workspace_services
from tests.factories import make_client, make_invoice

pytestmark = pytest.mark.django_db

TODAY = dt.date.today()

# basename → the fixture key of an object belonging to the owner collector's client.
RESOURCES = {
    "client": "client",
    "contact": "contact",
    "invoice": "invoice",
    "payment": "payment",
    "interaction": "interaction",
    "notice": "notice",
    "promise": "promise",
    "payment-plan": "plan",
    "dispute": "dispute",
    "task": "task",
}


def api(user=None, *, token=True) -> APIClient:
    http = APIClient()
    if user is None:
        return http
    if token:
        key = Token.objects.get_or_create(user=user)[0].key
        http.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    else:
        http.force_login(user)
    return http


def url(basename: str, kind: str = "list", **kwargs) -> str:
    return reverse(f"api:{basename}-{kind}", kwargs=kwargs)


def build_client_data(*, by, collector, suffix: str = "") -> dict:
    """A client with one of everything the API lists."""
    client = make_client(by=by, collector=collector)
    invoice = make_invoice(by=by, client=client, amount="500.00", due_date=TODAY - dt.timedelta(days=10))
    promised = make_invoice(by=by, client=client, amount="300.00", due_date=TODAY - dt.timedelta(days=5))
    planned = make_invoice(by=by, client=client, amount="600.00", due_date=TODAY - dt.timedelta(days=40))
    disputed = make_invoice(by=by, client=client, amount="200.00", due_date=TODAY - dt.timedelta(days=5))
    contact = services.contact_create(by=by, client=client, name="María López", email="maria@example.com")
    payment = services.payment_record(
        by=by,
        client=client,
        amount=Decimal("100.00"),
        received_on=TODAY,
        reference=f"REF-{client.pk}{suffix}",
        allocations=[services.AllocationRequest(invoice_id=invoice.pk, amount=Decimal("100.00"))],
    )
    interaction = services.interaction_log(by=by, client=client, kind="call", summary="Llamada", invoices=[invoice])
    promise = workspace_services.commitment_create(
        by=by,
        client=client,
        kind="promise",
        installments=[(TODAY + dt.timedelta(days=3), Decimal("300.00"))],
        invoices=[promised],
    )
    plan = workspace_services.commitment_create(
        by=by,
        client=client,
        kind="plan",
        installments=[(TODAY + dt.timedelta(days=10), Decimal("300.00")), (TODAY + dt.timedelta(days=40), "300.00")],
        invoices=[planned],
    )
    dispute = workspace_services.dispute_open(
        by=by, client=client, invoices=[disputed], reason="price", description="Precio incorrecto"
    )
    task = CollectorTask.objects.create(client=client, kind="call", title="Llamar", assigned_to=collector, due_on=TODAY)
    policy = Policy.objects.get(segment__code="regular")
    notice = Notice.objects.create(
        client=client,
        step=policy.steps.get(position=1),
        channel="email",
        planned_for=TODAY,
        scheduled_at=timezone.now(),
    )
    notice.invoices.add(invoice, through_defaults={"step": notice.step, "open_balance": "400.00", "days_overdue": 10})
    return {
        "client": client,
        "invoice": invoice,
        "open_invoice": promised,
        "contact": contact,
        "payment": payment,
        "interaction": interaction,
        "promise": promise,
        "plan": plan,
        "dispute": dispute,
        "task": task,
        "notice": notice,
    }


@pytest.fixture
def mine(gerente, gestora):
    return build_client_data(by=gerente, collector=gestora)


@pytest.fixture
def theirs(gerente, gestor):
    return build_client_data(by=gerente, collector=gestor)


# --- authentication and roles ------------------------------------------------------------

ALL_LISTS = [*RESOURCES, "segment", "policy"]


@pytest.mark.parametrize("basename", ALL_LISTS)
def test_anonymous_gets_401_on_every_list(basename):
    response = api().get(url(basename))
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Token")


@pytest.mark.parametrize("basename", ALL_LISTS)
def test_a_user_without_a_role_gets_403(basename, nobody):
    assert api(nobody).get(url(basename)).status_code == 403
    assert api(nobody, token=False).get(url(basename)).status_code == 403


def test_a_bad_token_is_401(mine):
    http = APIClient()
    http.credentials(HTTP_AUTHORIZATION="Token nope")
    assert http.get(url("client")).status_code == 401


@pytest.mark.parametrize("basename", list(RESOURCES))
def test_a_collector_sees_only_their_clients_data(basename, gestora, mine, theirs):
    http = api(gestora)
    response = http.get(url(basename))
    assert response.status_code == 200
    rows = response.json()["results"]
    assert mine[RESOURCES[basename]].pk in {row["id"] for row in rows}
    assert {row.get("client", row["id"]) for row in rows} == {mine["client"].pk}
    assert http.get(url(basename, "detail", pk=mine[RESOURCES[basename]].pk)).status_code == 200
    assert http.get(url(basename, "detail", pk=theirs[RESOURCES[basename]].pk)).status_code == 404


@pytest.mark.parametrize("basename", list(RESOURCES))
def test_a_manager_sees_everything(basename, gerente, mine, theirs):
    response = api(gerente, token=False).get(url(basename))  # session auth, like the browser
    assert response.status_code == 200
    rows = response.json()["results"]
    assert {mine[RESOURCES[basename]].pk, theirs[RESOURCES[basename]].pk} <= {row["id"] for row in rows}
    assert {row.get("client", row["id"]) for row in rows} == {mine["client"].pk, theirs["client"].pk}


def test_segments_are_readable_by_collectors(gestora):
    response = api(gestora).get(url("segment"))
    assert response.status_code == 200
    assert "regular" in {row["code"] for row in response.json()["results"]}


def test_policies_are_for_managers_and_carry_their_steps(gestora, gerente):
    assert api(gestora).get(url("policy")).status_code == 403
    response = api(gerente).get(url("policy"), {"limit": 100})
    assert response.status_code == 200
    regular = next(p for p in response.json()["results"] if p["segment"] == "regular")
    assert regular["steps"] and {"position", "offset_days", "channel"} <= set(regular["steps"][0])


def test_the_detail_of_a_promise_is_not_a_plan(gerente, mine):
    http = api(gerente)
    assert http.get(url("payment-plan", "detail", pk=mine["promise"].pk)).status_code == 404
    plan = http.get(url("payment-plan", "detail", pk=mine["plan"].pk)).json()
    assert plan["kind"] == "plan" and len(plan["installments"]) == 2


# --- clients and contacts ----------------------------------------------------------------


def client_payload(**overrides):
    return {"legal_name": "Ferretería del Norte S.A.", "segment": "regular", "tax_id": "FNO010101AB1", **overrides}


def test_a_manager_creates_and_updates_a_client(gerente, gestora):
    http = api(gerente)
    response = http.post(url("client"), client_payload(collector=gestora.pk), format="json")
    assert response.status_code == 201, response.json()
    pk = response.json()["id"]
    response = http.patch(url("client", "detail", pk=pk), {"status": "in_collection"}, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == "in_collection"
    # The service wrote the change to the timeline.
    assert Interaction.objects.filter(client_id=pk, summary__icontains="actualizados").exists()


def test_a_collector_cannot_write_clients(gestora, mine):
    http = api(gestora)
    assert http.post(url("client"), client_payload(), format="json").status_code == 403
    assert http.patch(url("client", "detail", pk=mine["client"].pk), {"notes": "x"}, format="json").status_code == 403


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"segment": "regular"}, "legal_name"),
        (client_payload(segment="no-such-segment"), "segment"),
        (client_payload(currency="pesos"), "currency"),
        (client_payload(time_zone="Mars/Olympus"), "time_zone"),
        (client_payload(credit_limit="-5"), "credit_limit"),
        (client_payload(client_since="31/02/2024"), "client_since"),
    ],
)
def test_bad_client_input_is_a_structured_400(gerente, payload, field):
    response = api(gerente).post(url("client"), payload, format="json")
    assert response.status_code == 400
    assert field in response.json() and isinstance(response.json()[field], list)


def test_a_duplicate_tax_id_is_a_400_from_the_service(gerente, mine):
    response = api(gerente).post(url("client"), client_payload(tax_id=mine["client"].tax_id), format="json")
    assert response.status_code == 400
    assert "tax_id" in response.json() or "non_field_errors" in response.json()


def test_a_collector_adds_and_edits_contacts_of_own_clients_only(gestora, mine, theirs):
    http = api(gestora)
    response = http.post(
        url("contact"), {"client": mine["client"].pk, "name": "Pedro", "role": "backup"}, format="json"
    )
    assert response.status_code == 201
    response = http.patch(url("contact", "detail", pk=response.json()["id"]), {"opt_out_sms": True}, format="json")
    assert response.status_code == 200 and response.json()["opt_out_sms"] is True
    response = http.post(url("contact"), {"client": theirs["client"].pk, "name": "Pedro"}, format="json")
    assert response.status_code == 400 and "client" in response.json()
    response = http.patch(
        url("contact", "detail", pk=mine["contact"].pk), {"client": theirs["client"].pk}, format="json"
    )
    assert response.status_code == 400


# --- invoices ----------------------------------------------------------------------------


def invoice_payload(for_client, /, **overrides):
    return {
        "client": for_client.pk,
        "number": "A-1001",
        "issue_date": str(TODAY - dt.timedelta(days=5)),
        "due_date": str(TODAY + dt.timedelta(days=25)),
        "amount": "1500.00",
        **overrides,
    }


def test_invoice_create_is_for_managers(gestora, gerente, mine):
    assert api(gestora).post(url("invoice"), invoice_payload(mine["client"]), format="json").status_code == 403
    response = api(gerente).post(url("invoice"), invoice_payload(mine["client"]), format="json")
    assert response.status_code == 201
    assert response.json()["currency"] == mine["client"].currency
    assert response.json()["open_balance"] == "1500.00"


def test_an_invoice_number_is_a_natural_key(gerente, mine):
    http = api(gerente)
    first = http.post(url("invoice"), invoice_payload(mine["client"]), format="json")
    again = http.post(url("invoice"), invoice_payload(mine["client"]), format="json")
    assert again.status_code == 200
    assert again.json() == first.json()
    assert Invoice.objects.filter(number="A-1001").count() == 1
    changed = http.post(url("invoice"), invoice_payload(mine["client"], amount="1600.00"), format="json")
    assert changed.status_code == 409
    assert "number" in changed.json() and "amount" in changed.json()["number"][0]
    assert Invoice.objects.get(number="A-1001").amount == Decimal("1500.00")


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"amount": "-10"}, "amount"),
        ({"amount": "0"}, "amount"),
        ({"amount": "mucho"}, "amount"),
        ({"client": 999999}, "client"),
        ({"number": ""}, "number"),
        ({"issue_date": "2024-13-45"}, "issue_date"),
        ({"due_date": str(TODAY - dt.timedelta(days=30))}, "due_date"),
        ({"currency": "E1"}, "currency"),
    ],
)
def test_bad_invoice_input_is_a_structured_400(gerente, mine, overrides, field):
    response = api(gerente).post(url("invoice"), invoice_payload(mine["client"], **overrides), format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()


def test_missing_fields_are_each_named(gerente):
    response = api(gerente).post(url("invoice"), {}, format="json")
    assert response.status_code == 400
    assert {"client", "number", "issue_date", "amount"} <= set(response.json())


def test_invoice_status_change_is_for_managers(gestora, gerente, mine):
    invoice = mine["open_invoice"]
    target = url("invoice", "set-status", pk=invoice.pk)
    assert api(gestora).post(target, {"status": "written_off", "reason": "x"}, format="json").status_code == 403
    response = api(gerente).post(target, {"status": "written_off"}, format="json")
    assert response.status_code == 400 and "reason" in response.json()
    response = api(gerente).post(target, {"status": "written_off", "reason": "Incobrable"}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "written_off"


def test_a_service_validation_error_is_a_400_on_its_field(gerente, mine):
    # The invoice has a payment applied: the service refuses to cancel it.
    target = url("invoice", "set-status", pk=mine["invoice"].pk)
    response = api(gerente).post(target, {"status": "cancelled", "reason": "error"}, format="json")
    assert response.status_code == 400
    assert "status" in response.json()


def test_invoice_filters_and_ordering(gerente, mine, theirs):
    http = api(gerente)
    rows = http.get(url("invoice"), {"client": mine["client"].pk}).json()["results"]
    assert {r["client"] for r in rows} == {mine["client"].pk} and len(rows) == 4
    rows = http.get(url("invoice"), {"status": "disputed"}).json()["results"]
    assert {r["id"] for r in rows} == {mine["dispute"].invoices.get().pk, theirs["dispute"].invoices.get().pk}
    since = str(TODAY - dt.timedelta(days=12))
    until = str(TODAY - dt.timedelta(days=8))
    rows = http.get(url("invoice"), {"due_date_after": since, "due_date_before": until}).json()["results"]
    assert {r["id"] for r in rows} == {mine["invoice"].pk, theirs["invoice"].pk}
    rows = http.get(url("invoice"), {"collector": mine["client"].collector_id}).json()["results"]
    assert {r["client"] for r in rows} == {mine["client"].pk}
    rows = http.get(url("invoice"), {"ordering": "-amount"}).json()["results"]
    amounts = [Decimal(r["amount"]) for r in rows]
    assert amounts == sorted(amounts, reverse=True)
    assert http.get(url("invoice"), {"due_date_after": "not-a-date"}).status_code == 400


def test_client_filters(gerente, mine, theirs):
    http = api(gerente)
    rows = http.get(url("client"), {"collector": mine["client"].collector_id}).json()["results"]
    assert [r["id"] for r in rows] == [mine["client"].pk]
    assert http.get(url("client"), {"segment": "regular"}).json()["count"] == 2
    assert http.get(url("client"), {"segment": "vip-que-no-existe"}).json()["count"] == 0


def test_limit_offset_pagination(gerente, mine, theirs):
    http = api(gerente)
    page = http.get(url("invoice"), {"limit": 3, "offset": 0}).json()
    assert page["count"] == 8 and len(page["results"]) == 3 and page["next"] and page["previous"] is None
    last = http.get(url("invoice"), {"limit": 3, "offset": 6}).json()
    assert len(last["results"]) == 2 and last["next"] is None


# --- payments ----------------------------------------------------------------------------


def payment_payload(for_client, /, **overrides):
    return {"client": for_client.pk, "amount": "250.00", "received_on": str(TODAY), "reference": "TRF-777", **overrides}


def test_a_collector_records_a_payment_with_allocations(gestora, mine):
    invoice = mine["open_invoice"]
    payload = payment_payload(mine["client"], allocations=[{"invoice": invoice.pk, "amount": "200.00"}])
    response = api(gestora).post(url("payment"), payload, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["allocations"] == [{"invoice": invoice.pk, "amount": "200.00"}]
    assert body["unallocated"] == "50.00"
    invoice.refresh_from_db()
    assert invoice.amount_paid == Decimal("200.00") and invoice.status == "partially_paid"


def test_a_payment_reference_is_a_natural_key(gestora, mine):
    http = api(gestora)
    first = http.post(url("payment"), payment_payload(mine["client"]), format="json")
    again = http.post(url("payment"), payment_payload(mine["client"]), format="json")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert Payment.objects.filter(reference="TRF-777").count() == 1
    other = http.post(url("payment"), payment_payload(mine["client"], amount="999.00"), format="json")
    assert other.status_code == 400 and "reference" in other.json()


def test_a_collector_cannot_pay_into_another_collectors_client(gestora, theirs):
    response = api(gestora).post(url("payment"), payment_payload(theirs["client"]), format="json")
    assert response.status_code == 400 and "client" in response.json()
    assert not Payment.objects.filter(reference="TRF-777").exists()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"amount": "-1.00"}, "amount"),
        ({"client": 987654}, "client"),
        ({"currency": "ZZ"}, "currency"),
        # The right shape, but no ISO 4217 currency; more than MONEY_MAX_AMOUNT.
        ({"currency": "ZZZ"}, "currency"),
        ({"amount": "10000000000.00"}, "amount"),
        ({"received_on": "ayer"}, "received_on"),
        ({"received_on": str(TODAY + dt.timedelta(days=30))}, "received_on"),
        ({"method": "bitcoin"}, "method"),
        ({"allocations": [{"invoice": 1, "amount": "-5"}]}, "allocations"),
        ({"allocations": [{"invoice": 987654, "amount": "5"}]}, "allocations"),
        ({"allocations": "nope"}, "allocations"),
    ],
)
def test_bad_payment_input_is_a_structured_400(gestora, mine, overrides, field):
    response = api(gestora).post(url("payment"), payment_payload(mine["client"], **overrides), format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert not Payment.objects.filter(reference="TRF-777").exists()


def test_a_payment_in_another_currency_than_the_invoice_is_refused(gestora, mine):
    payload = payment_payload(
        mine["client"], currency="USD", allocations=[{"invoice": mine["open_invoice"].pk, "amount": "10"}]
    )
    response = api(gestora).post(url("payment"), payload, format="json")
    assert response.status_code == 400 and "allocations" in response.json()


def test_malformed_json_is_a_400(gestora):
    response = api(gestora).post(url("payment"), "{not json", content_type="application/json")
    assert response.status_code == 400


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a":' * 50_000 + b"1" + b"}" * 50_000,  # RecursionError inside json: was a 500
        b"[" * 50_000 + b"]" * 50_000,
        b'{"summary": "\xff\xfe"}',  # not UTF-8
        b'{"amount": NaN}',
    ],
)
@pytest.mark.parametrize("idempotency_key", [None, "k-deep"])
def test_malformed_json_of_any_shape_is_a_400(gestora, raw, idempotency_key):
    """Security finding 7 (docs/security.md), through the Idempotency-Key path too."""
    headers = {"HTTP_IDEMPOTENCY_KEY": idempotency_key} if idempotency_key else {}
    for name in ("payment", "interaction"):
        response = api(gestora).post(url(name), raw, content_type="application/json", **headers)
        assert response.status_code == 400, (name, response.content[:200])


# --- Idempotency-Key ---------------------------------------------------------------------


def test_a_retried_post_with_the_same_key_creates_one_object(gestora, mine):
    http = api(gestora)
    payload = {"client": mine["client"].pk, "kind": "call", "summary": "Llamada al cliente"}
    before = Interaction.objects.filter(summary="Llamada al cliente").count()
    first = http.post(url("interaction"), payload, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    second = http.post(url("interaction"), payload, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert Interaction.objects.filter(summary="Llamada al cliente").count() == before + 1
    # Another key is another request.
    third = http.post(url("interaction"), payload, format="json", HTTP_IDEMPOTENCY_KEY="k-2")
    assert third.status_code == 201 and third.json()["id"] != first.json()["id"]


def test_the_same_key_with_another_body_is_a_422(gestora, mine):
    http = api(gestora)
    payload = {"client": mine["client"].pk, "kind": "call", "summary": "Primera"}
    assert http.post(url("interaction"), payload, format="json", HTTP_IDEMPOTENCY_KEY="k").status_code == 201
    response = http.post(url("interaction"), {**payload, "summary": "Otra"}, format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert response.status_code == 422
    assert "idempotency_key" in response.json()
    assert not Interaction.objects.filter(summary="Otra").exists()


def test_an_error_is_not_stored_so_the_key_can_be_retried(gestora, mine):
    http = api(gestora)
    bad = http.post(
        url("payment"), payment_payload(mine["client"], amount="-1"), format="json", HTTP_IDEMPOTENCY_KEY="p"
    )
    assert bad.status_code == 400
    assert not IdempotencyKey.objects.filter(key="p").exists()
    good = http.post(url("payment"), payment_payload(mine["client"]), format="json", HTTP_IDEMPOTENCY_KEY="p")
    assert good.status_code == 201


def test_keys_are_per_user(gestora, gerente, mine):
    payload = {"client": mine["client"].pk, "kind": "note", "summary": "Nota"}
    a = api(gestora).post(url("interaction"), payload, format="json", HTTP_IDEMPOTENCY_KEY="same")
    b = api(gerente).post(url("interaction"), payload, format="json", HTTP_IDEMPOTENCY_KEY="same")
    assert a.status_code == b.status_code == 201 and a.json()["id"] != b.json()["id"]


def test_idempotent_invoice_and_payment_posts(gerente, mine):
    http = api(gerente)
    for _attempt in range(2):
        response = http.post(
            url("invoice"), invoice_payload(mine["client"], number="K-1"), format="json", HTTP_IDEMPOTENCY_KEY="inv"
        )
        assert response.status_code == 201
    assert Invoice.objects.filter(number="K-1").count() == 1
    for _attempt in range(2):
        response = http.post(
            url("payment"), payment_payload(mine["client"], reference=""), format="json", HTTP_IDEMPOTENCY_KEY="pay"
        )
        assert response.status_code == 201
    assert Payment.objects.filter(client=mine["client"], amount=Decimal("250.00")).count() == 1


# --- interactions, commitments, disputes, tasks ------------------------------------------


def test_interactions_are_logged_through_the_service(gestora, mine, theirs):
    http = api(gestora)
    payload = {
        "client": mine["client"].pk,
        "kind": "call",
        "summary": "Promete pagar",
        "outcome": "promise",
        "contact": mine["contact"].pk,
        "invoices": [mine["invoice"].pk],
        "next_action_on": str(TODAY + dt.timedelta(days=2)),
    }
    response = http.post(url("interaction"), payload, format="json")
    assert response.status_code == 201
    entry = Interaction.objects.get(pk=response.json()["id"])
    assert entry.author == gestora and list(entry.invoices.all()) == [mine["invoice"]]
    response = http.post(url("interaction"), {**payload, "client": theirs["client"].pk}, format="json")
    assert response.status_code == 400 and "client" in response.json()
    response = http.post(url("interaction"), {**payload, "kind": "telepathy"}, format="json")
    assert response.status_code == 400 and "kind" in response.json()
    future = (timezone.now() + dt.timedelta(days=1)).isoformat()
    response = http.post(url("interaction"), {**payload, "occurred_at": future}, format="json")
    assert response.status_code == 400 and "occurred_at" in response.json()


def test_a_collector_records_a_promise_and_a_plan(gestora, gerente, mine):
    invoice = make_invoice(by=gerente, client=mine["client"], amount="900.00", due_date=TODAY - dt.timedelta(days=3))
    http = api(gestora)
    promise = {
        "client": mine["client"].pk,
        "invoices": [invoice.pk],
        "installments": [{"due_on": str(TODAY + dt.timedelta(days=5)), "amount": "400.00"}],
    }
    response = http.post(url("promise"), promise, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["kind"] == "promise" and response.json()["total"] == "400.00"
    # The invoice is now under an open commitment: a second one is a 400 from the service.
    response = http.post(url("payment-plan"), promise, format="json")
    assert response.status_code == 400 and "invoices" in response.json()
    Commitment.objects.filter(pk__gt=0, invoices=invoice).update(status="cancelled", resolved_on=TODAY)
    plan = {
        **promise,
        "installments": [
            {"due_on": str(TODAY + dt.timedelta(days=10)), "amount": "450.00"},
            {"due_on": str(TODAY + dt.timedelta(days=40)), "amount": "450.00"},
        ],
    }
    response = http.post(url("payment-plan"), plan, format="json")
    assert response.status_code == 201 and response.json()["kind"] == "plan"
    assert len(response.json()["installments"]) == 2


@pytest.mark.parametrize(
    ("installments", "field"),
    [
        ([], "installments"),
        ([{"due_on": str(TODAY - dt.timedelta(days=2)), "amount": "10.00"}], "installments"),
        ([{"due_on": str(TODAY + dt.timedelta(days=2)), "amount": "-10.00"}], "installments"),
        ([{"due_on": "mañana", "amount": "10.00"}], "installments"),
        ([{"due_on": str(TODAY + dt.timedelta(days=2)), "amount": "99999.00"}], "installments"),
    ],
)
def test_bad_promises_are_structured_400s(gestora, mine, installments, field):
    payload = {"client": mine["client"].pk, "installments": installments}
    response = api(gestora).post(url("promise"), payload, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()


def test_a_collector_opens_a_dispute(gestora, gerente, mine, theirs):
    invoice = make_invoice(by=gerente, client=mine["client"], amount="120.00", due_date=TODAY - dt.timedelta(days=3))
    http = api(gestora)
    payload = {"client": mine["client"].pk, "invoices": [invoice.pk], "reason": "product", "description": "Llegó roto"}
    response = http.post(url("dispute"), payload, format="json")
    assert response.status_code == 201
    invoice.refresh_from_db()
    assert invoice.status == "disputed"
    assert Dispute.objects.get(pk=response.json()["id"]).owner == gestora
    response = http.post(url("dispute"), {**payload, "reason": "capricho"}, format="json")
    assert response.status_code == 400 and "reason" in response.json()
    response = http.post(url("dispute"), {**payload, "invoices": [theirs["invoice"].pk]}, format="json")
    assert response.status_code == 400 and "invoices" in response.json()
    response = http.post(url("dispute"), {**payload, "description": ""}, format="json")
    assert response.status_code == 400 and "description" in response.json()


def test_completing_a_task(gestora, gestor, mine, theirs):
    target = url("task", "complete", pk=mine["task"].pk)
    assert api(gestor).post(target, {}, format="json").status_code == 404
    response = api(gestora).post(target, {"note": "Hablé con María"}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "done"
    again = api(gestora).post(target, {}, format="json")
    assert again.status_code == 400 and "task" in again.json()


def test_a_service_permission_denied_is_a_403(gestora, mine):
    # Unassigned tasks are the managers' queue (services_tasks.task_complete).
    task = CollectorTask.objects.create(client=mine["client"], kind="review", title="Revisar", due_on=TODAY)
    response = api(gestora).post(url("task", "complete", pk=task.pk), {}, format="json")
    assert response.status_code == 403
    assert "detail" in response.json()


def test_task_filters(gerente, gestora, mine, theirs):
    rows = api(gerente).get(url("task"), {"assigned_to": gestora.pk, "status": "open"}).json()["results"]
    assert {r["id"] for r in rows} == {mine["task"].pk} | set(
        CollectorTask.objects.filter(assigned_to=gestora, status="open").values_list("pk", flat=True)
    )


# --- query counts ------------------------------------------------------------------------


def _count(http, target) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = http.get(target)
    assert response.status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize("who", ["manager", "collector"])
def test_list_endpoints_cost_the_same_for_one_row_or_many(who, gerente, gestora):
    build_client_data(by=gerente, collector=gestora)
    user = gerente if who == "manager" else gestora
    targets = [url(b) for b in ALL_LISTS if not (b == "policy" and who == "collector")]
    one = {t: _count(api(user), t) for t in targets}
    for n in range(3):
        build_client_data(by=gerente, collector=gestora, suffix=f"-{n}")
    many = {t: _count(api(user), t) for t in targets}
    assert many == one


# --- schema and docs ---------------------------------------------------------------------


def test_the_schema_is_an_openapi_3_document_covering_every_resource(gestora):
    response = api(gestora).get(reverse("api:schema"), {"format": "json"})
    assert response.status_code == 200
    doc = response.json()
    assert doc["openapi"].startswith("3.")
    assert doc["info"]["title"] and doc["info"]["version"]
    methods = {"get", "post", "put", "patch", "delete"}
    for path, item in doc["paths"].items():
        assert methods & set(item), f"{path} has no operations"
        for method in methods & set(item):
            assert item[method]["responses"], f"{method} {path} documents no response"
    prefixes = {p.split("/")[3] for p in doc["paths"]}
    assert prefixes == {
        "clients",
        "contacts",
        "segments",
        "invoices",
        "payments",
        "interactions",
        "policies",
        "notices",
        "promises",
        "payment-plans",
        "disputes",
        "tasks",
        "metrics",  # /metrics/portfolio/ and /metrics/trend/ (test_api_metrics)
    }
    assert "post" in doc["paths"]["/api/v1/tasks/{id}/complete/"]
    schemes = doc["components"]["securitySchemes"]
    assert {"tokenAuth", "cookieAuth"} <= set(schemes)
    # Every $ref points at a component that exists.
    import json
    import re

    refs = set(re.findall(r'"#/components/schemas/([^"]+)"', json.dumps(doc)))
    assert refs <= set(doc["components"]["schemas"])


def test_the_schema_builds_without_warnings():
    from drf_spectacular.drainage import GENERATOR_STATS
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.settings import patched_settings

    from cobranza.api.schema import SCHEMA_SETTINGS

    GENERATOR_STATS.reset()
    with patched_settings(SCHEMA_SETTINGS):
        SchemaGenerator().get_schema(request=None, public=True)
    assert not GENERATOR_STATS._warn_cache and not GENERATOR_STATS._error_cache


@pytest.mark.parametrize("name", ["api:swagger-ui", "api:redoc"])
def test_docs_pages_load_from_local_assets(name, gestora):
    response = api(gestora, token=False).get(reverse(name))
    assert response.status_code == 200
    html = response.content.decode()
    assert "drf_spectacular_sidecar" in html
    assert "cdn.jsdelivr" not in html and "unpkg.com" not in html


@pytest.mark.parametrize("name", ["api:schema", "api:swagger-ui", "api:redoc"])
def test_schema_and_docs_are_for_staff(name, nobody):
    assert api().get(reverse(name)).status_code == 401
    assert api(nobody, token=False).get(reverse(name)).status_code == 403


def test_a_get_on_a_post_only_action_is_405(gerente, mine):
    assert api(gerente).get(url("task", "complete", pk=mine["task"].pk)).status_code == 405
    assert api(gerente).get(url("invoice", "set-status", pk=mine["invoice"].pk)).status_code == 405
