"""The collector's work on one client, through the browser's forms (Django's test client):
"Registrar gestión" with the promise, plan or dispute it produced, commitments and disputes on
the client page, and the client analysis (docs/domain.md#client-analysis).

Dates are fixed with time_machine: the regular ladder's steps fall on known days, as in
test_commitments.py.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts import services as ledger
from accounts.models import Interaction, Invoice, Payment
from cobranza.engine.planner import plan
from cobranza.models import CollectorTask, Commitment, Dispute, Installment, Notice, TaskKind
from cobranza.workspace import jobs as commitments
from cobranza.workspace import services as workspace_services
from cobranza.workspace.forms import plan_schedule
from cobranza.workspace.selectors import client_analysis
from cobranza.workspace.views import workspace_panel
from tests.factories import client_page_html, make_client, make_invoice

pytestmark = pytest.mark.django_db

MX = ZoneInfo("America/Mexico_City")
DUE = dt.date(2026, 3, 2)  # a Monday; regular ladder: -3 email, +1 email, +7 SMS, +15 call, ...


def day(n: int) -> dt.date:
    return DUE + dt.timedelta(days=n)


def at(d: dt.date, hour: int = 10) -> dt.datetime:
    return dt.datetime.combine(d, dt.time(hour), tzinfo=MX)


@pytest.fixture
def clock():
    with time_machine.travel(at(DUE), tick=False) as traveller:
        yield lambda d, hour=10: traveller.move_to(at(d, hour))


@pytest.fixture
def debtor(clock, gerente, gestora):
    """Two MXN invoices due on DUE (10,000 owed), one in USD; a billing contact and a guarantor."""
    client = make_client(by=gerente, collector=gestora, segment_code="regular")
    ana = ledger.contact_create(by=gerente, client=client, name="Ana Pagos", email="ana@cliente.example")
    aval = ledger.contact_create(by=gerente, client=client, name="Jorge Aval", role="guarantor", phone="+525511")
    a = make_invoice(by=gerente, client=client, number="P-1", due_date=DUE, issue_date=day(-30), amount="6000.00")
    b = make_invoice(by=gerente, client=client, number="P-2", due_date=DUE, issue_date=day(-30), amount="4000.00")
    usd = make_invoice(
        by=gerente, client=client, number="P-USD", due_date=DUE, issue_date=day(-30), amount="500.00", currency="USD"
    )
    return {"client": client, "a": a, "b": b, "usd": usd, "ana": ana, "aval": aval}


def _outcome(client, **fields) -> dict:
    """The POST of the quick form: a reached call by default, the promise rows' formset
    management data included (the browser sends it with the form)."""
    data = {
        "channel": "call",
        "direction": "outbound",
        "reached": "reached",
        "result": "",
        "summary": "",
        "body": "",
        "promise-TOTAL_FORMS": "4",
        "promise-INITIAL_FORMS": "0",
        "promise-MIN_NUM_FORMS": "0",
        "promise-MAX_NUM_FORMS": "4",
    }
    for n, (when, amount) in enumerate(fields.pop("promise", [])):
        data[f"promise-{n}-due_on"] = when.isoformat()
        data[f"promise-{n}-amount"] = str(amount)
    data.update({k: v for k, v in fields.items() if v is not None})
    return data


def _ids(*invoices) -> list[str]:
    return [str(inv.pk) for inv in invoices]


def _planned(client, d) -> list[tuple[int, list[str]]]:
    return sorted(
        (n.step.offset_days, sorted(i.invoice.number for i in n.items.all()))
        for n in Notice.objects.filter(client=client, planned_for=d).prefetch_related("items__invoice")
    )


# --- registrar gestión -------------------------------------------------------------------------


def test_the_quick_form_shows_contacts_with_the_guarantor_marked_and_mxn_invoices_checked(client, debtor, gestora):
    client.force_login(gestora)
    response = client.get(reverse("cobranza:log_outcome", args=[debtor["client"].pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Jorge Aval (aval)" in html
    form = response.context["form"]
    assert set(form["invoices"].value()) == {debtor["a"].pk, debtor["b"].pk}  # USD left out by default
    # The promise's first amount is what the default invoices owe.
    assert response.context["forms"].promise.forms[0]["amount"].value() == Decimal("10000.00")


def test_a_call_with_a_promise_logs_the_call_creates_the_promise_and_pauses_reminders(client, debtor, clock, gestora):
    c, a, b = debtor["client"], debtor["a"], debtor["b"]
    clock(day(1))
    client.force_login(gestora)
    response = client.post(
        reverse("cobranza:log_outcome", args=[c.pk]),
        _outcome(
            c,
            contact=debtor["ana"].pk,
            nonpayment_reason="cash_flow",
            result="promise",
            invoices=_ids(a, b),
            promise=[(day(5), "10000.00")],
            body="Paga el viernes por transferencia.",
            next_action_on=day(6).isoformat(),
        ),
    )
    assert response.status_code == 302
    assert response.url == reverse("client_detail", args=[c.pk]) + "?tab=cobranza#compromisos"

    call = Interaction.objects.get(client=c, kind="call")
    assert call.outcome == "promise" and call.direction == "outbound"
    assert call.contact == debtor["ana"] and call.nonpayment_reason == "cash_flow"
    assert call.next_action_on == day(6) and call.author == gestora
    assert call.summary == "Llamada con Ana Pagos: Promesa de pago"
    assert sorted(call.invoices.values_list("number", flat=True)) == ["P-1", "P-2"]

    promise = Commitment.objects.get(client=c)
    assert promise.kind == "promise" and promise.status == "open" and promise.total == Decimal("10000.00")
    assert promise.contact == debtor["ana"] and promise.created_by == gestora and promise.made_on == day(1)
    assert sorted(promise.invoices.values_list("number", flat=True)) == ["P-1", "P-2"]
    assert list(promise.installments.values_list("due_on", "amount")) == [(day(5), Decimal("10000.00"))]

    # Reminders pause for the promised invoices: on the +1 day only the USD invoice is planned.
    plan(today=day(1))
    assert _planned(c, day(1)) == [(1, ["P-USD"])]

    page = client.get(reverse("client_detail", args=[c.pk]), {"tab": "cobranza"})  # where the form sends back
    panel = page.content.decode()
    assert 'data-testid="open-commitment" data-kind="promise"' in panel
    assert "Promesa de pago registrada" in " ".join(str(m) for m in page.context["messages"])


def test_a_promise_with_two_dates_makes_two_installments(client, debtor, clock, gestora):
    c = debtor["client"]
    client.force_login(gestora)
    response = client.post(
        reverse("cobranza:log_outcome", args=[c.pk]),
        _outcome(
            c,
            result="promise",
            invoices=_ids(debtor["a"], debtor["b"]),
            # Given out of order: the schedule is sorted by date.
            promise=[(day(12), "6000.00"), (day(5), "4000.00")],
        ),
    )
    assert response.status_code == 302
    promise = Commitment.objects.get(client=c)
    assert list(promise.installments.values_list("number", "due_on", "amount")) == [
        (1, day(5), Decimal("4000.00")),
        (2, day(12), Decimal("6000.00")),
    ]
    assert promise.total == Decimal("10000.00")


def test_a_plan_request_creates_the_plan_by_the_schedule_rule(client, debtor, clock, gestora, settings):
    c = debtor["client"]
    client.force_login(gestora)
    response = client.post(
        reverse("cobranza:log_outcome", args=[c.pk]),
        _outcome(
            c,
            contact=debtor["aval"].pk,
            nonpayment_reason="cash_flow",
            result="plan_request",
            invoices=_ids(debtor["a"], debtor["b"]),
            **{"plan-count": "3", "plan-first_on": day(10).isoformat(), "plan-frequency": "monthly"},
        ),
    )
    assert response.status_code == 302, response.context and response.context["forms"].plan.errors
    plan_ = Commitment.objects.get(client=c)
    assert plan_.kind == "plan" and plan_.contact == debtor["aval"]
    assert plan_.grace_days == settings.PLAN_GRACE_DAYS and plan_.missed_allowed == settings.PLAN_MISSED_ALLOWED
    # 10,000 in three: 3,333.33 twice and the leftover cent on the last; the same day each month.
    assert list(plan_.installments.values_list("due_on", "amount")) == [
        (dt.date(2026, 3, 12), Decimal("3333.33")),
        (dt.date(2026, 4, 12), Decimal("3333.33")),
        (dt.date(2026, 5, 12), Decimal("3333.34")),
    ]
    call = Interaction.objects.get(client=c, kind="call")
    assert call.outcome == "plan_request" and call.summary == "Llamada con Jorge Aval: Plan de pagos"


def test_the_plan_rule_every_n_days_with_a_chosen_amount_and_its_preview(client, debtor, clock, gestora):
    c = debtor["client"]
    client.force_login(gestora)
    params = {
        "plan-count": "4",
        "plan-first_on": day(3).isoformat(),
        "plan-frequency": "days",
        "plan-every_days": "15",
        "plan-total": "1000.00",
        "invoices": _ids(debtor["a"]),
    }
    preview = client.post(reverse("cobranza:plan_preview", args=[c.pk]), params, headers={"HX-Request": "true"})
    assert preview.status_code == 200
    assert [(when, amount) for when, amount in preview.context["rows"]] == [
        (day(3), Decimal("250.00")),
        (day(18), Decimal("250.00")),
        (day(33), Decimal("250.00")),
        (day(48), Decimal("250.00")),
    ]
    assert 'data-testid="plan-schedule"' in preview.content.decode()

    response = client.post(
        reverse("cobranza:commitment_create", args=[c.pk]) + "?kind=plan", {**params, "kind": "plan"}
    )
    assert response.status_code == 302
    plan_ = Commitment.objects.get(client=c)
    assert plan_.total == Decimal("1000.00") and list(plan_.invoices.values_list("number", flat=True)) == ["P-1"]
    assert [i.due_on for i in plan_.installments.all()] == [day(3), day(18), day(33), day(48)]


def test_plan_schedule_puts_the_cents_on_the_last_installment_and_keeps_month_ends():
    rows = plan_schedule(total=Decimal("100.00"), count=3, first_on=dt.date(2026, 1, 31), frequency="monthly")
    assert rows == [
        (dt.date(2026, 1, 31), Decimal("33.33")),
        (dt.date(2026, 2, 28), Decimal("33.33")),
        (dt.date(2026, 3, 31), Decimal("33.34")),
    ]
    rows = plan_schedule(total=Decimal("0.05"), count=2, first_on=dt.date(2026, 1, 1), frequency="days", every_days=7)
    assert rows == [(dt.date(2026, 1, 1), Decimal("0.02")), (dt.date(2026, 1, 8), Decimal("0.03"))]


def test_a_dispute_from_the_quick_form_opens_it_for_the_chosen_invoices(client, debtor, clock, gestora):
    c, b = debtor["client"], debtor["b"]
    client.force_login(gestora)
    response = client.post(
        reverse("cobranza:log_outcome", args=[c.pk]),
        _outcome(
            c,
            direction="inbound",
            nonpayment_reason="complaint",
            result="dispute",
            invoices=_ids(b),
            **{"dispute-reason": "product", "dispute-description": "Llegaron 3 piezas rotas."},
        ),
    )
    assert response.status_code == 302
    dispute = Dispute.objects.get(client=c)
    assert dispute.reason == "product" and dispute.owner == gestora and dispute.status == "open"
    assert list(dispute.invoices.values_list("number", flat=True)) == ["P-2"]
    b.refresh_from_db()
    assert b.status == Invoice.Status.DISPUTED
    call = Interaction.objects.get(client=c, kind="call")
    assert call.direction == "inbound" and call.outcome == "dispute" and call.nonpayment_reason == "complaint"
    assert CollectorTask.objects.filter(dispute=dispute, kind=TaskKind.DISPUTE, assigned_to=gestora).exists()


def test_a_call_without_answer_ignores_the_result_part(client, debtor, clock, gestora):
    c = debtor["client"]
    client.force_login(gestora)
    response = client.post(
        reverse("cobranza:log_outcome", args=[c.pk]),
        _outcome(
            c,
            channel="whatsapp",
            reached="no_answer",
            result="promise",  # left over in the hidden part of the form
            invoices=_ids(debtor["a"]),
            next_action_on=day(2).isoformat(),
        ),
    )
    assert response.status_code == 302
    entry = Interaction.objects.get(client=c, kind="whatsapp")
    assert entry.outcome == "no_answer" and entry.summary == "WhatsApp: No contesta"
    assert not entry.invoices.exists() and not Commitment.objects.exists()


@pytest.mark.parametrize(
    "promise, field",
    [
        ([(day(-1), "100.00")], "promise-0-due_on"),  # a date in the past: on its own field
        ([(day(5), "10000.01")], "promise"),  # more than the invoices owe: on top of the dates
        ([(day(5), "5000.00"), (day(5), "5000.00")], "promise"),  # two amounts on one date
    ],
)
def test_an_invalid_promise_saves_nothing_and_shows_the_errors_where_they_belong(
    client, debtor, clock, gestora, promise, field
):
    c = debtor["client"]
    client.force_login(gestora)
    before = Interaction.objects.count()
    response = client.post(
        reverse("cobranza:log_outcome", args=[c.pk]),
        _outcome(c, result="promise", invoices=_ids(debtor["a"], debtor["b"]), promise=promise, body="Promete pagar"),
    )
    assert response.status_code == 200
    forms_ = response.context["forms"]
    if field == "promise":
        assert forms_.promise.non_form_errors(), forms_.promise.errors
    else:
        assert forms_.promise.forms[0].errors["due_on"]
    assert 'class="invalid-feedback d-block"' in response.content.decode() or forms_.promise.non_form_errors()
    # Nothing saved: not the commitment, not the call either.
    assert Interaction.objects.count() == before
    assert not Commitment.objects.exists() and not Installment.objects.exists()


def test_a_promise_on_an_invoice_already_promised_rolls_back_the_call_too(client, debtor, clock, gestora):
    c, a = debtor["client"], debtor["a"]
    workspace_services.commitment_create(
        by=gestora, client=c, kind="promise", installments=[(day(9), Decimal("100"))], invoices=[a]
    )
    client.force_login(gestora)
    before = Interaction.objects.count()
    response = client.post(
        reverse("cobranza:log_outcome", args=[c.pk]),
        _outcome(c, result="promise", invoices=_ids(a), promise=[(day(5), "500.00")]),
    )
    # The call was written before the promise was refused: the transaction took it back.
    assert response.status_code == 200
    assert "Ya hay un compromiso vigente para: P-1" in str(response.context["form"].errors["invoices"])
    assert Interaction.objects.count() == before and Commitment.objects.count() == 1


def test_an_invalid_dispute_or_plan_shows_field_errors(client, debtor, clock, gestora):
    c = debtor["client"]
    client.force_login(gestora)
    response = client.post(
        reverse("cobranza:log_outcome", args=[c.pk]),
        _outcome(c, result="dispute", **{"dispute-reason": "product", "dispute-description": ""}),
    )
    assert response.status_code == 200
    assert response.context["forms"].dispute.errors["description"]
    # Chosen no invoice: the dispute service says so, on the invoices.
    response = client.post(
        reverse("cobranza:log_outcome", args=[c.pk]),
        _outcome(c, result="dispute", **{"dispute-reason": "product", "dispute-description": "Rotas"}),
    )
    assert response.status_code == 200
    assert response.context["form"].errors["invoices"] == ["Elija al menos una factura."]
    response = client.post(
        reverse("cobranza:log_outcome", args=[c.pk]),
        _outcome(
            c,
            result="plan_request",
            invoices=_ids(debtor["a"]),
            **{"plan-count": "3", "plan-first_on": day(-2).isoformat(), "plan-frequency": "days"},
        ),
    )
    plan_form = response.context["forms"].plan
    assert plan_form.errors["first_on"] and plan_form.errors["every_days"]
    assert not Interaction.objects.filter(kind="call").exists() and not Dispute.objects.exists()


# --- commitments and disputes on the client page -------------------------------------------------


def test_an_extension_gives_one_new_date_for_what_the_chosen_invoices_owe(client, debtor, clock, gestora):
    c = debtor["client"]
    client.force_login(gestora)
    url = reverse("cobranza:commitment_create", args=[c.pk]) + "?kind=extension"
    assert client.get(url).status_code == 200
    response = client.post(
        url, {"kind": "extension", "ext-new_date": day(20).isoformat(), "invoices": _ids(debtor["a"])}
    )
    assert response.status_code == 302
    extension = Commitment.objects.get(client=c)
    assert extension.kind == "extension" and extension.total == Decimal("6000.00")
    assert list(extension.installments.values_list("due_on", "amount")) == [(day(20), Decimal("6000.00"))]
    # A past date is refused on its field.
    response = client.post(
        url, {"kind": "extension", "ext-new_date": day(-1).isoformat(), "invoices": _ids(debtor["b"])}
    )
    assert response.status_code == 200 and response.context["section"].errors["new_date"]


def test_cancelling_a_commitment_needs_a_reason(client, debtor, clock, gestora):
    c = debtor["client"]
    promise = workspace_services.commitment_create(
        by=gestora, client=c, kind="promise", installments=[(day(5), Decimal("100"))]
    )
    client.force_login(gestora)
    url = reverse("cobranza:commitment_cancel", args=[promise.pk])
    response = client.post(url, {"reason": ""})
    assert response.status_code == 200 and response.context["form"].errors["reason"] == ["Indique el motivo."]
    response = client.post(url, {"reason": "Se registró por error"})
    assert response.status_code == 302 and response.url.endswith("?tab=cobranza#compromisos")
    promise.refresh_from_db()
    assert promise.status == "cancelled"
    assert Interaction.objects.filter(
        client=c, summary="Promesa de pago cancelada", body="Se registró por error"
    ).exists()
    # Twice: the page says it is no longer open, nothing breaks.
    assert client.post(url, {"reason": "otra vez"}).status_code == 200


def test_resolving_a_dispute_with_a_credit_note(client, debtor, clock, gestora):
    c, a = debtor["client"], debtor["a"]
    dispute = workspace_services.dispute_open(
        by=gestora, client=c, invoices=[a], reason="price", description="Precio mal"
    )
    client.force_login(gestora)
    url = reverse("cobranza:dispute_resolve", args=[dispute.pk])
    assert client.get(url).status_code == 200
    response = client.post(url, {"resolution": "credit_note", "amount": "1500.00", "notes": ""})
    assert response.status_code == 200 and response.context["form"].errors["notes"]
    response = client.post(
        url, {"resolution": "credit_note", "amount": "1500.00", "notes": "Se acredita la diferencia"}
    )
    assert response.status_code == 302
    dispute.refresh_from_db()
    assert dispute.status == "resolved" and dispute.resolution == "credit_note" and dispute.resolved_by == gestora
    a.refresh_from_db()
    assert a.status == Invoice.Status.PARTIALLY_PAID and a.open_balance == Decimal("4500.00")
    assert Payment.objects.get(client=c).method == Payment.Method.CREDIT_NOTE
    panel = client_page_html(client, c.pk)
    assert 'data-testid="no-open-disputes"' in panel and "Se acredita la diferencia" in panel


def test_only_the_owner_or_a_manager_resolves_a_dispute(client, debtor, clock, gestora, gerente):
    c = debtor["client"]
    dispute = workspace_services.dispute_open(
        by=gerente, client=c, invoices=[debtor["a"]], reason="price", description="x", owner=gerente
    )
    client.force_login(gestora)
    url = reverse("cobranza:dispute_resolve", args=[dispute.pk])
    assert client.get(url).status_code == 403
    assert client.post(url, {"resolution": "rejected", "notes": "no"}).status_code == 403
    panel = client_page_html(client, c.pk)
    assert 'data-testid="open-dispute"' in panel and 'data-testid="resolve-form"' not in panel
    client.force_login(gerente)
    assert client.post(url, {"resolution": "rejected", "notes": "Factura correcta"}).status_code == 302


def test_a_dispute_from_its_own_form(client, debtor, clock, gestora):
    c = debtor["client"]
    client.force_login(gestora)
    url = reverse("cobranza:dispute_open", args=[c.pk])
    response = client.post(url, {"invoices": _ids(debtor["a"]), "dispute-reason": "", "dispute-description": ""})
    assert response.status_code == 200
    assert set(response.context["section"].errors) == {"reason", "description"}
    response = client.post(
        url, {"invoices": _ids(debtor["a"]), "dispute-reason": "delivery", "dispute-description": "No llegó"}
    )
    assert response.status_code == 302
    assert Dispute.objects.get(client=c).reason == "delivery"


# --- who may do what -------------------------------------------------------------------------------


@pytest.fixture
def objects(debtor, gestora):
    c = debtor["client"]
    promise = workspace_services.commitment_create(
        by=gestora, client=c, kind="promise", installments=[(day(5), Decimal("100"))], invoices=[debtor["a"]]
    )
    dispute = workspace_services.dispute_open(
        by=gestora, client=c, invoices=[debtor["b"]], reason="price", description="x"
    )
    return {"client": c, "commitment": promise, "dispute": dispute}


URLS = [
    ("cobranza:log_outcome", "client"),
    ("cobranza:commitment_create", "client"),
    ("cobranza:plan_preview", "client"),
    ("cobranza:dispute_open", "client"),
    ("cobranza:commitment_cancel", "commitment"),
    ("cobranza:dispute_resolve", "dispute"),
]


@pytest.mark.parametrize("name, obj", URLS)
def test_access_rules(client, objects, gestora, gestor, gerente, admin_user, nobody, name, obj):
    url = reverse(name, args=[objects[obj].pk])
    assert client.get(url).status_code == 302  # anonymous: to the login page
    client.force_login(nobody)
    assert client.get(url).status_code == 403
    assert client.post(url, {}).status_code in (403, 405)
    client.force_login(gestor)  # another collector's client: it does not exist for him
    preview = name == "cobranza:plan_preview"  # POST only: the form it previews carries notes
    assert (client.post if preview else client.get)(url).status_code == 404
    assert client.post(url, {"reason": "x", "notes": "x"}).status_code == 404
    for user in (gestora, gerente, admin_user):
        client.force_login(user)
        assert (client.post if preview else client.get)(url).status_code == 200, (name, user)
        if preview:
            assert client.get(url).status_code == 405
    assert Commitment.objects.get().status == "open" and Dispute.objects.get().status == "open"


def test_the_panel_is_not_shown_without_a_role(rf, debtor, nobody):
    request = rf.get("/")
    request.user = nobody
    assert workspace_panel(request, debtor["client"]) == ""


# --- the client analysis ------------------------------------------------------------------------------


@pytest.fixture
def history(gerente, gestora):
    """A client with two years of history, on 2 March 2026. Hand-computed below."""
    with time_machine.travel(at(dt.date(2026, 3, 2)), tick=False) as traveller:
        c = make_client(by=gerente, collector=gestora)

        def invoice(number, issued, due, amount, currency="MXN"):
            return make_invoice(
                by=gerente, client=c, number=number, issue_date=issued, due_date=due, amount=amount, currency=currency
            )

        def pay(inv, amount, on):
            ledger.payment_record(
                by=gerente,
                client=c,
                amount=Decimal(amount),
                currency=inv.currency,
                received_on=on,
                allocations=[ledger.AllocationRequest(invoice_id=inv.pk, amount=Decimal(amount))],
            )

        # Billed 12 to 24 months ago: 1,000 + 2,000.
        a = invoice("H-A", dt.date(2024, 6, 1), dt.date(2024, 7, 1), "1000.00")
        pay(a, "1000.00", dt.date(2024, 7, 1))  # settled more than 12 months ago: not in the behaviour
        b = invoice("H-B", dt.date(2025, 1, 10), dt.date(2025, 2, 10), "2000.00")
        pay(b, "2000.00", dt.date(2025, 3, 12))  # 30 days late, 6-12 months ago
        # Billed in the last 12 months: 3,000 + 1,500 + 2,500 + 1,000 (+ a cancelled 9,999, + 500 USD).
        c3 = invoice("H-C", dt.date(2025, 5, 1), dt.date(2025, 6, 1), "3000.00")
        pay(c3, "3000.00", dt.date(2025, 6, 1))  # on time, 6-12 months ago
        d = invoice("H-D", dt.date(2025, 10, 1), dt.date(2025, 10, 31), "1500.00")
        # A promise on D, kept: paid in two parts, the last 10 days after the due date.
        traveller.move_to(at(dt.date(2025, 11, 1)))
        workspace_services.commitment_create(
            by=gestora,
            client=c,
            kind="promise",
            installments=[(dt.date(2025, 11, 10), Decimal("1500.00"))],
            invoices=[d],
        )
        pay(d, "1000.00", dt.date(2025, 11, 1))
        traveller.move_to(at(dt.date(2025, 11, 10)))
        pay(d, "500.00", dt.date(2025, 11, 10))
        commitments.judge(today=dt.date(2025, 11, 11))
        traveller.move_to(at(dt.date(2026, 1, 5)))
        e = invoice("H-E", dt.date(2025, 12, 1), dt.date(2025, 12, 31), "2500.00")
        pay(e, "2500.00", dt.date(2025, 12, 20))  # early: 0 days late, in the last 6 months
        f = invoice("H-F", dt.date(2026, 2, 1), dt.date(2026, 3, 1), "1000.00")
        # A promise on F, broken; then a dispute on it.
        traveller.move_to(at(dt.date(2026, 2, 5)))
        workspace_services.commitment_create(
            by=gestora,
            client=c,
            kind="promise",
            installments=[(dt.date(2026, 2, 10), Decimal("1000.00"))],
            invoices=[f],
        )
        commitments.judge(today=dt.date(2026, 2, 11))
        traveller.move_to(at(dt.date(2026, 3, 2)))
        workspace_services.dispute_open(
            by=gestora, client=c, invoices=[f], reason="service", description="Servicio incompleto"
        )
        g = invoice("H-G", dt.date(2025, 11, 1), dt.date(2025, 12, 1), "9999.00")
        ledger.invoice_set_status(by=gerente, invoice=g, status=Invoice.Status.CANCELLED, reason="Duplicada")
        invoice("H-USD", dt.date(2025, 8, 1), dt.date(2025, 9, 1), "500.00", currency="USD")
        yield c


def test_the_analysis_matches_the_hand_computed_numbers(history):
    analysis = client_analysis(history, today=dt.date(2026, 3, 2))
    mxn, usd = analysis.billing
    assert (mxn.currency, mxn.last_12m, mxn.previous_12m) == ("MXN", Decimal("8000.00"), Decimal("3000.00"))
    assert mxn.growth_pct == Decimal("166.7")  # (8,000 − 3,000) ÷ 3,000 × 100
    assert (usd.currency, usd.last_12m, usd.growth_pct) == ("USD", Decimal("500.00"), None)
    # Tenure: no client_since, so from the first invoice (1 June 2024): 1 year 9 months.
    assert analysis.since == dt.date(2024, 6, 1) and analysis.since_is_first_invoice
    assert (analysis.tenure_years, analysis.tenure_rest_months) == (1, 9)
    # Incidents: the broken promise and the dispute.
    assert (analysis.broken_commitments, analysis.disputes, analysis.handoffs, analysis.incidents) == (1, 1, 0, 2)
    assert (analysis.promises_kept, analysis.promises_judged, analysis.promise_kept_pct) == (1, 2, Decimal("50.0"))
    # Settled 6-12 months ago: B (30 days late) and C (on time); in the last 6: D (10, its last
    # payment counts) and E (early: 0).
    assert (analysis.previous.settled, analysis.previous.late, analysis.previous.days) == (2, 1, 30)
    assert (analysis.recent.settled, analysis.recent.late, analysis.recent.days) == (2, 1, 10)
    year = analysis.year
    assert (year.avg_days_late, year.share_late_pct) == (Decimal("10.0"), Decimal("50.0"))
    assert analysis.trend_days == Decimal("-10.0") and analysis.trend == "better"


def test_the_analysis_of_a_client_without_history(debtor):
    analysis = client_analysis(debtor["client"], today=DUE)
    assert [(b.currency, b.last_12m, b.previous_12m) for b in analysis.billing] == [
        ("MXN", Decimal("10000.00"), Decimal("0.00")),
        ("USD", Decimal("500.00"), Decimal("0.00")),
    ]
    assert analysis.year.settled == 0 and analysis.year.avg_days_late is None and analysis.trend == ""
    assert analysis.promise_kept_pct is None and analysis.incidents == 0


def test_the_panel_shows_the_analysis_and_the_history(client, history, gestora):
    with time_machine.travel(at(dt.date(2026, 3, 2)), tick=False):
        client.force_login(gestora)
        html = client_page_html(client, history.pk)
    assert 'data-testid="workspace-panel"' in html
    assert "+166,7 %" in html or "+166.7 %" in html
    assert "1 año" in html and "9 meses" in html
    assert 'data-trend="better"' in html
    assert 'data-status="kept"' in html and 'data-status="broken"' in html
    assert "Incumplida" in html and "Cumplida" in html


# --- cost ---------------------------------------------------------------------------------------------


def _panel_queries(user, c) -> int:
    request = RequestFactory().get("/")
    request.user = user
    workspace_panel(request, c)  # the roles are read once per request: warm them like the page does
    with CaptureQueriesContext(connection) as ctx:
        html = workspace_panel(request, c)
    assert 'data-testid="workspace-panel"' in html
    return len(ctx.captured_queries)


PANEL_QUERIES = 7  # commitments, installments, their invoices, disputes, their invoices, open invoices, analysis


def _grow(c, n, *, by, collector, tag):
    for i in range(n):
        inv = make_invoice(by=by, client=c, amount="100.00", due_date=DUE - dt.timedelta(days=i), number=f"{tag}-{i}")
        paid = make_invoice(by=by, client=c, amount="50.00", due_date=DUE - dt.timedelta(days=40), number=f"{tag}-P{i}")
        ledger.payment_record(
            by=by,
            client=c,
            amount=Decimal("50.00"),
            received_on=DUE,
            allocations=[ledger.AllocationRequest(invoice_id=paid.pk, amount=Decimal("50.00"))],
        )
        if i % 3 == 0:
            workspace_services.commitment_create(
                by=collector,
                client=c,
                kind="plan",
                installments=[(DUE, Decimal("30")), (day(30), Decimal("70"))],
                invoices=[inv],
            )
        elif i % 3 == 1:
            workspace_services.dispute_open(
                by=collector, client=c, invoices=[inv], reason="price", description=f"{tag}{i}"
            )
        else:
            promise = workspace_services.commitment_create(
                by=collector, client=c, kind="promise", installments=[(day(2), Decimal("100"))], invoices=[inv]
            )
            workspace_services.commitment_cancel(by=collector, commitment=promise, reason="error")


@pytest.mark.parametrize("role", ["gestora", "gerente"])
def test_the_panel_costs_a_constant_number_of_queries(request, debtor, clock, gerente, gestora, role):
    user = request.getfixturevalue(role)
    c = debtor["client"]
    _grow(c, 3, by=gerente, collector=gestora, tag="A")
    few = _panel_queries(user, c)
    _grow(c, 30, by=gerente, collector=gestora, tag="B")
    many = _panel_queries(user, c)
    assert few == many == PANEL_QUERIES


# --- calls outside the debtor's hours (docs/domain.md#call-windows) -----------------------------


def test_logging_a_call_outside_the_debtors_hours_asks_why(client, gerente, gestora):
    import time_machine

    from accounts.models import Interaction

    # Monday 7 December 2026, 10:00 UTC: 04:00 in Mexico City (calls from 07:00).
    with time_machine.travel(dt.datetime(2026, 12, 7, 10, 0, tzinfo=dt.UTC), tick=False):
        debtor = make_client(by=gerente, collector=gestora, legal_name="Madrugada S.A.")
        url = reverse("cobranza:log_outcome", args=[debtor.pk])
        client.force_login(gestora)
        page = client.get(url).content.decode()
        assert 'data-testid="outside-hours"' in page and "Fuera del horario permitido (07:00–22:00" in page
        response = client.post(url, _outcome(client, reached="no_answer"))
        assert response.status_code == 200
        assert "indique por qué llamó" in " ".join(response.context["form"].errors["outside_hours_reason"])
        assert not Interaction.objects.filter(client=debtor, kind="call").exists()
        # The client called us: no reason needed.
        response = client.post(url, _outcome(client, direction="inbound", reached="reached"))
        assert response.status_code == 302
        response = client.post(
            url, _outcome(client, reached="no_answer", outside_hours_reason="Pidió que le llamara antes de su turno")
        )
        assert response.status_code == 302
        entry = Interaction.objects.filter(client=debtor, direction="outbound", kind="call").get()
        assert entry.body.startswith("Llamada fuera del horario permitido (Fuera del horario permitido (07:00–22:00")
        assert "Motivo: Pidió que le llamara antes de su turno" in entry.body
    # At 16:00 UTC (10:00 in Mexico City) the question is not asked.
    with time_machine.travel(dt.datetime(2026, 12, 7, 16, 0, tzinfo=dt.UTC), tick=False):
        assert 'data-testid="outside-hours"' not in client.get(url).content.decode()
        assert client.post(url, _outcome(client, reached="no_answer")).status_code == 302
