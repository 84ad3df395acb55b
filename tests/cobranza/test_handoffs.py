"""Hand-offs to a collection agency or to legal: the case file, the client's status, updates
and recoveries (real payments), closing, the dispatcher's idempotent helper, the pages with
their access rules, and the list's query count."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts import services as ledger
from accounts.models import Client, Interaction, Invoice, Payment
from cobranza.handoffs import selectors as handoff_selectors
from cobranza.handoffs import services as handoffs
from cobranza.handoffs.views import client_panel
from cobranza.models import HandOff, HandOffUpdate, Notice, NoticeItem, PolicyStep
from tests.factories import make_client, make_invoice

pytestmark = pytest.mark.django_db
TODAY = timezone.localdate()
# session + user + roles, agency suggestions, count, page, totals sent and recovered (2)
LIST_MAX = 8


def _days_ago(n: int) -> dt.date:
    return TODAY - dt.timedelta(days=n)


def _url(name, *args):
    return reverse(f"cobranza:{name}", args=args)


def _csv(handoff) -> list[dict]:
    text = handoff_selectors.case_file_path(handoff, "csv").read_text(encoding="utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))


# --- data ----------------------------------------------------------------------------------


@pytest.fixture
def debtor(gerente, gestora, outbox):
    """Lucía's client with two overdue invoices (one partly paid), one not yet due, a
    billing contact, a guarantor and some history. ``outbox`` puts MEDIA_ROOT in tmp."""
    client = make_client(by=gerente, collector=gestora, legal_name="Constructora Los Pinos", tax_id="CLP010101AB1")
    ledger.contact_create(by=gerente, client=client, name="Rosa Pagos", email="rosa@pinos.example")
    ledger.contact_create(by=gerente, client=client, name="Don Aval Fiador", role="guarantor", phone="+525511112222")
    make_invoice(by=gerente, client=client, number="LP-1", amount="3000.00", due_date=_days_ago(95))
    make_invoice(by=gerente, client=client, number="LP-2", amount="2000.00", due_date=_days_ago(62))
    make_invoice(by=gerente, client=client, number="LP-3", amount="500.00", due_date=TODAY + dt.timedelta(days=10))
    ledger.payment_record(by=gerente, client=client, amount=Decimal("1000.00"), received_on=_days_ago(40))
    ledger.interaction_log(
        by=gestora, client=client, kind="call", outcome="refused", summary="Dice que no piensa pagar"
    )
    return client


@pytest.fixture
def sent(debtor, gerente):
    return handoffs.handoff_open(by=gerente, client=debtor, kind="agency", agency="Despacho Pérez")


# --- opening ---------------------------------------------------------------------------------


def test_opening_sends_the_overdue_invoices_and_writes_the_case_file(debtor, sent):
    assert sent.status == "open"
    assert sent.currency == "MXN"
    assert sorted(inv.number for inv in sent.invoices.all()) == ["LP-1", "LP-2"]  # LP-3 is not due yet
    assert sent.amount == Decimal("4000.00")  # 2000 left on LP-1 + 2000 on LP-2

    pdf = handoff_selectors.case_file_path(sent, "pdf")
    assert sent.case_file.startswith("expedientes/")
    assert pdf.is_file() and pdf.read_bytes().startswith(b"%PDF")
    rows = _csv(sent)
    invoices = [r for r in rows if r["registro"] == "factura"]
    assert [(r["folio"], r["saldo"], r["moneda"]) for r in invoices] == [
        ("LP-1", "2000.00", "MXN"),
        ("LP-2", "2000.00", "MXN"),
    ]
    assert invoices[0]["dias_atraso"] == "95"
    history = [r for r in rows if r["registro"] == "historial"]
    assert len(history) == Interaction.objects.filter(client=debtor).count()
    assert any(r["resumen"] == "Dice que no piensa pagar" for r in history)


def test_the_case_file_shows_contacts_guarantors_payments_and_the_timeline(sent):
    html = handoff_selectors.case_file_html(sent)
    for text in ("Constructora Los Pinos", "CLP010101AB1", "Rosa Pagos", "Don Aval Fiador", "Aval", "LP-1", "LP-2"):
        assert text in html
    assert "LP-3" not in html.split("Pagos recibidos")[0]  # not sent
    assert "Dice que no piensa pagar" in html
    assert "Despacho Pérez" in html


def test_opening_moves_the_client_to_the_agency_and_writes_the_timeline(debtor, sent):
    debtor.refresh_from_db()
    assert debtor.status == Client.Status.AGENCY
    entry = Interaction.objects.filter(client=debtor, summary__contains="expediente enviado").get()
    assert "Despacho Pérez" in entry.summary
    assert sorted(i.number for i in entry.invoices.all()) == ["LP-1", "LP-2"]
    assert Interaction.objects.filter(client=debtor, body__contains="En agencia de cobranza").exists()


def test_a_second_open_handoff_of_the_same_kind_is_refused(debtor, gerente, sent):
    with pytest.raises(ValidationError) as exc:
        handoffs.handoff_open(by=gerente, client=debtor, kind="agency")
    assert "kind" in exc.value.error_dict
    assert HandOff.objects.filter(client=debtor).count() == 1
    # The database says the same, whoever writes.
    with pytest.raises(IntegrityError), transaction.atomic():
        HandOff.objects.create(client=debtor, kind="agency", opened_on=TODAY, currency="MXN", amount=1)


def test_legal_can_follow_an_open_agency_case_and_wins_the_status(debtor, gerente, sent):
    legal = handoffs.handoff_open(by=gerente, client=debtor, kind="legal", agency="Abogados Ruiz")
    debtor.refresh_from_db()
    assert debtor.status == Client.Status.LEGAL
    handoffs.handoff_close(by=gerente, handoff=sent, status="returned", note="La agencia no pudo localizarlo")
    debtor.refresh_from_db()
    assert debtor.status == Client.Status.LEGAL  # the legal case is still open
    assert legal.status == "open"


def test_invoices_in_several_currencies_are_refused_with_their_list(debtor, gerente):
    make_invoice(by=gerente, client=debtor, number="LP-USD", amount="100.00", currency="USD", due_date=_days_ago(70))
    with pytest.raises(ValidationError) as exc:
        handoffs.handoff_open(by=gerente, client=debtor, kind="agency")
    message = " ".join(exc.value.message_dict["invoices"])
    assert "MXN, USD" in message
    assert not HandOff.objects.exists()
    debtor.refresh_from_db()
    assert debtor.status == Client.Status.ACTIVE  # nothing changed
    # Chosen invoices of one currency go.
    usd = Invoice.objects.get(number="LP-USD")
    handoff = handoffs.handoff_open(by=gerente, client=debtor, kind="agency", invoices=[usd])
    assert (handoff.currency, handoff.amount) == ("USD", Decimal("100.00"))


def test_disputed_paid_or_missing_invoices_are_refused(debtor, gerente, gestor):
    lp2 = Invoice.objects.get(number="LP-2")
    ledger.invoice_set_status(by=gerente, invoice=lp2, status="disputed", reason="Reclama entrega incompleta")
    with pytest.raises(ValidationError) as exc:
        handoffs.handoff_open(by=gerente, client=debtor, kind="legal", invoices=[lp2])
    assert "disputa" in " ".join(exc.value.message_dict["invoices"])
    with pytest.raises(ValidationError) as exc:
        handoffs.handoff_open(by=gerente, client=debtor, kind="legal", invoices=[])
    assert "invoices" in exc.value.error_dict
    other = make_client(by=gerente, collector=gestor)  # nothing overdue to send
    with pytest.raises(ValidationError) as exc:
        handoffs.handoff_open(by=gerente, client=other, kind="legal")
    assert "invoices" in exc.value.error_dict


def test_a_collector_cannot_open_or_close(debtor, gestora, gerente):
    with pytest.raises(PermissionDenied):
        handoffs.handoff_open(by=gestora, client=debtor, kind="agency")
    handoff = handoffs.handoff_open(by=gerente, client=debtor, kind="agency")
    with pytest.raises(PermissionDenied):
        handoffs.handoff_close(by=gestora, handoff=handoff, status="closed", note="x")


# --- updates and recoveries ------------------------------------------------------------------


def test_a_recovery_records_a_payment_on_the_oldest_sent_invoice_first(debtor, gestora, sent):
    update = handoffs.handoff_update(
        by=gestora, handoff=sent, on=TODAY, recovered=Decimal("2500.00"), reference="AG-TRX-1", note="Primer abono"
    )
    payment = update.payment
    assert payment is not None
    assert (payment.amount, payment.method, payment.reference) == (Decimal("2500.00"), "transfer", "AG-TRX-1")
    assert payment.unallocated == 0
    lp1, lp2, lp3 = (Invoice.objects.get(number=n) for n in ("LP-1", "LP-2", "LP-3"))
    assert (lp1.open_balance, lp1.status) == (Decimal("0.00"), "paid")
    assert (lp2.open_balance, lp2.status) == (Decimal("1500.00"), "partially_paid")
    assert lp3.open_balance == Decimal("500.00")  # not sent: untouched
    assert handoff_selectors.handoff_detail(user=gestora, pk=sent.pk).recovered == Decimal("2500.00")
    assert Interaction.objects.filter(client=debtor, summary__contains="recuperado").exists()


def test_the_same_transfer_reported_twice_is_recorded_once(gestora, sent):
    first = handoffs.handoff_update(by=gestora, handoff=sent, on=TODAY, recovered=Decimal("300"), reference="AG-9")
    again = handoffs.handoff_update(by=gestora, handoff=sent, on=TODAY, recovered=Decimal("300"), reference="AG-9")
    assert again.pk == first.pk
    assert Payment.objects.filter(reference="AG-9").count() == 1
    assert HandOffUpdate.objects.filter(handoff=sent).count() == 1


def test_more_than_was_sent_stays_as_client_credit(gerente, sent):
    update = handoffs.handoff_update(by=gerente, handoff=sent, on=TODAY, recovered=Decimal("4200.00"))
    assert update.payment.unallocated == Decimal("200.00")
    assert Invoice.objects.get(number="LP-3").open_balance == Decimal("500.00")


def test_an_update_needs_a_note_or_money_and_a_sensible_date(gestora, sent):
    with pytest.raises(ValidationError) as exc:
        handoffs.handoff_update(by=gestora, handoff=sent, on=TODAY)
    assert "note" in exc.value.error_dict
    with pytest.raises(ValidationError) as exc:
        handoffs.handoff_update(by=gestora, handoff=sent, on=TODAY + dt.timedelta(days=2), note="x")
    assert "on" in exc.value.error_dict
    note = handoffs.handoff_update(by=gestora, handoff=sent, on=TODAY, note="El despacho envió requerimiento")
    assert note.payment is None and note.recovered == 0
    assert Interaction.objects.filter(summary__contains="El despacho envió requerimiento").exists()


def test_another_collector_cannot_add_updates(gestor, sent):
    with pytest.raises(PermissionDenied):
        handoffs.handoff_update(by=gestor, handoff=sent, on=TODAY, note="x")


# --- closing ---------------------------------------------------------------------------------


def test_returned_puts_the_client_back_in_collection(debtor, gerente, sent):
    handoffs.handoff_close(by=gerente, handoff=sent, status="returned", note="Sin resultados en 90 días")
    sent.refresh_from_db()
    debtor.refresh_from_db()
    assert (sent.status, sent.closed_on) == ("returned", TODAY)
    assert debtor.status == Client.Status.IN_COLLECTION
    assert Interaction.objects.filter(client=debtor, summary__contains="caso cerrado").exists()
    assert sent.updates.filter(note__contains="Sin resultados").exists()


def test_recovered_in_full_makes_the_client_active_again(debtor, gerente, sent):
    handoffs.handoff_update(by=gerente, handoff=sent, on=TODAY, recovered=Decimal("4500.00"))  # LP-3 too, as credit
    ledger.client_apply_credit(by=gerente, client=debtor)
    handoffs.handoff_close(by=gerente, handoff=sent, status="recovered", note="")
    debtor.refresh_from_db()
    assert debtor.status == Client.Status.ACTIVE


def test_closed_without_recovery_leaves_the_status_to_the_manager(debtor, gerente, sent):
    with pytest.raises(ValidationError) as exc:
        handoffs.handoff_close(by=gerente, handoff=sent, status="closed", note=" ")
    assert "note" in exc.value.error_dict
    handoffs.handoff_close(by=gerente, handoff=sent, status="closed", note="Insolvente")
    debtor.refresh_from_db()
    assert debtor.status == Client.Status.AGENCY
    with pytest.raises(ValidationError):
        handoffs.handoff_close(by=gerente, handoff=sent, status="returned", note="otra vez")
    with pytest.raises(ValidationError):
        handoffs.handoff_update(by=gerente, handoff=sent, on=TODAY, note="tarde")


# --- the dispatcher's helper -----------------------------------------------------------------


def _agency_notice(client) -> Notice:
    step = PolicyStep.objects.filter(channel="agency").order_by("id").first()
    notice = Notice.objects.create(
        client=client, step=step, channel="agency", planned_for=TODAY, scheduled_at=timezone.now(), status="sending"
    )
    for inv in Invoice.objects.filter(client=client, due_date__lt=TODAY):
        NoticeItem.objects.create(
            notice=notice, invoice=inv, step=step, open_balance=inv.open_balance, days_overdue=inv.days_overdue()
        )
    return notice


def test_open_for_notice_is_idempotent(debtor):
    notice = _agency_notice(debtor)
    first = handoffs.open_for_notice(notice)
    again = handoffs.open_for_notice(notice)
    assert again.pk == first.pk
    assert HandOff.objects.filter(client=debtor).count() == 1
    assert first.opened_by is None
    assert notice.step.name in first.notes
    debtor.refresh_from_db()
    assert debtor.status == Client.Status.AGENCY


def test_open_for_notice_keeps_the_clients_currency_and_says_what_stayed_behind(debtor, gerente):
    make_invoice(by=gerente, client=debtor, number="LP-USD", amount="100.00", currency="USD", due_date=_days_ago(70))
    handoff = handoffs.open_for_notice(_agency_notice(debtor))
    assert handoff.currency == "MXN"
    assert "LP-USD (USD)" in handoff.notes


# --- pages -----------------------------------------------------------------------------------


def test_permission_rules_on_the_pages(client, debtor, sent, gestora, gestor, gerente):
    pages = [
        _url("handoff_detail", sent.pk),
        _url("handoff_file", sent.pk) + "?format=pdf",
        _url("handoff_file", sent.pk) + "?format=csv",
        _url("handoff_update", sent.pk),
    ]
    client.force_login(gestor)  # another collector: the hand-off does not exist for him
    for url in pages:
        assert client.get(url).status_code == 404, url
    assert client.post(_url("handoff_update", sent.pk), {"on": TODAY, "note": "x"}).status_code == 404
    assert sent.pk not in [h.pk for h in client.get(_url("handoff_list")).context["handoffs"]]

    client.force_login(gestora)  # the client's collector: sees and updates, neither opens nor closes
    for url in pages:
        assert client.get(url).status_code == 200, url
    assert client.get(_url("handoff_create", debtor.pk)).status_code == 403
    assert client.post(_url("handoff_create", debtor.pk), {"kind": "legal"}).status_code == 403
    assert client.get(_url("handoff_close", sent.pk)).status_code == 403
    assert client.post(_url("handoff_close", sent.pk), {"status": "closed", "note": "x"}).status_code == 403
    sent.refresh_from_db()
    assert sent.status == "open"


def test_the_file_view_serves_the_pdf_and_the_csv_privately(client, gestora, sent):
    client.force_login(gestora)
    pdf = client.get(_url("handoff_file", sent.pk))
    assert pdf["Content-Type"] == "application/pdf"
    assert pdf["Cache-Control"] == "private, no-store"
    assert b"".join(pdf.streaming_content).startswith(b"%PDF")
    data = client.get(_url("handoff_file", sent.pk), {"format": "csv"})
    assert data["Content-Type"].startswith("text/csv")
    assert "attachment" in data["Content-Disposition"]
    assert client.get(_url("handoff_file", sent.pk), {"format": "../../etc/passwd"}).status_code == 404
    handoff_selectors.case_file_path(sent, "pdf").unlink()
    assert client.get(_url("handoff_file", sent.pk)).status_code == 404


def test_a_manager_sends_a_client_from_the_panel_form(client, gerente, debtor):
    client.force_login(gerente)
    page = client.get(reverse("client_detail", args=[debtor.pk]), {"tab": "cobranza"})
    assert b'data-testid="handoff-form"' in page.content
    response = client.post(_url("handoff_create", debtor.pk), {"kind": "legal", "agency": "Abogados Ruiz"})
    handoff = HandOff.objects.get(client=debtor)
    assert response.status_code == 302 and response.url == _url("handoff_detail", handoff.pk)
    assert (handoff.kind, handoff.agency, handoff.amount) == ("legal", "Abogados Ruiz", Decimal("4000.00"))
    detail = client.get(response.url)
    assert b'data-testid="file-pdf"' in detail.content and b'data-testid="file-csv"' in detail.content
    # The panel now lists it, and only offers the other kind.
    page = client.get(reverse("client_detail", args=[debtor.pk]), {"tab": "cobranza"})
    assert _url("handoff_detail", handoff.pk).encode() in page.content
    assert b'<option value="legal">' not in page.content


def test_the_full_form_sends_the_chosen_invoices(client, gerente, debtor):
    client.force_login(gerente)
    page = client.get(_url("handoff_create", debtor.pk), {"kind": "agency"})
    assert page.status_code == 200
    lp3 = Invoice.objects.get(number="LP-3")
    lp1 = Invoice.objects.get(number="LP-1")
    client.post(_url("handoff_create", debtor.pk), {"kind": "agency", "invoices": [lp1.pk, lp3.pk]})
    handoff = HandOff.objects.get(client=debtor)
    assert sorted(i.number for i in handoff.invoices.all()) == ["LP-1", "LP-3"]
    assert handoff.amount == Decimal("2500.00")


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"kind": "bank"}, "kind"),
        ({"kind": "agency", "invoices": ["999999"]}, "invoices"),
        ({"kind": "agency", "agency": "x" * 200}, "agency"),
    ],
)
def test_a_bad_opening_form_shows_field_errors(client, gerente, debtor, data, field):
    client.force_login(gerente)
    response = client.post(_url("handoff_create", debtor.pk), data)
    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert not HandOff.objects.exists()


def test_a_service_error_on_the_opening_form_is_shown_not_a_500(client, gerente, debtor, sent):
    client.force_login(gerente)
    response = client.post(_url("handoff_create", debtor.pk), {"kind": "agency"})
    assert response.status_code == 200
    assert "kind" in response.context["form"].errors
    make_invoice(by=gerente, client=debtor, number="LP-USD", amount="100.00", currency="USD", due_date=_days_ago(70))
    response = client.post(_url("handoff_create", debtor.pk), {"kind": "legal"})
    assert response.status_code == 200
    assert "MXN, USD" in " ".join(response.context["form"].errors["invoices"])


def test_the_collector_records_a_recovery_through_the_page(client, gestora, sent):
    client.force_login(gestora)
    bad = client.post(_url("handoff_update", sent.pk), {"on": TODAY, "recovered": "abc"})
    assert bad.status_code == 200 and "recovered" in bad.context["form"].errors
    empty = client.post(_url("handoff_update", sent.pk), {"on": TODAY})
    assert empty.status_code == 200 and "note" in empty.context["form"].errors
    ok = client.post(
        _url("handoff_update", sent.pk), {"on": TODAY, "recovered": "1000.00", "reference": "WEB-1", "note": "Abono"}
    )
    assert ok.status_code == 302
    detail = client.get(_url("handoff_detail", sent.pk))
    assert detail.context["handoff"].recovered == Decimal("1000.00")
    assert b"WEB-1" in detail.content


def test_the_manager_closes_through_the_page(client, gerente, debtor, sent):
    client.force_login(gerente)
    bad = client.post(_url("handoff_close", sent.pk), {"status": "returned"})
    assert bad.status_code == 200 and "note" in bad.context["form"].errors
    ok = client.post(_url("handoff_close", sent.pk), {"status": "returned", "note": "No lo localizan"})
    assert ok.status_code == 302
    debtor.refresh_from_db()
    assert debtor.status == Client.Status.IN_COLLECTION
    again = client.get(_url("handoff_close", sent.pk))
    assert again.status_code == 302  # closed: back to the detail with a message


def test_the_list_filters_and_shows_recovery_rates(client, gerente, debtor, sent, gestor):
    handoffs.handoff_update(by=gerente, handoff=sent, on=TODAY, recovered=Decimal("1000.00"))
    other = make_client(by=gerente, collector=gestor)
    make_invoice(by=gerente, client=other, amount="1000.00", due_date=_days_ago(100))
    handoffs.handoff_open(by=gerente, client=other, kind="legal", agency="Abogados Ruiz")
    client.force_login(gerente)
    page = client.get(_url("handoff_list"))
    assert len(page.context["handoffs"]) == 2
    (total,) = page.context["totals"]
    assert (total.sent, total.recovered) == (Decimal("5000.00"), Decimal("1000.00"))
    assert total.rate == Decimal("20")
    assert "25.0 %" in page.content.decode()  # the agency case: 1000 of 4000
    assert [h.pk for h in client.get(_url("handoff_list"), {"kind": "agency"}).context["handoffs"]] == [sent.pk]
    assert [h.pk for h in client.get(_url("handoff_list"), {"agency": "ruiz"}).context["handoffs"]] != [sent.pk]
    assert client.get(_url("handoff_list"), {"status": "nonsense", "kind": "x"}).status_code == 200


@pytest.mark.parametrize("role", ["gerente", "gestora"])
def test_list_query_count_does_not_grow(client, request, gerente, gestora, outbox, role):
    def add(n):
        for _i in range(n):
            debtor = make_client(by=gerente, collector=gestora)
            make_invoice(by=gerente, client=debtor, amount="800.00", due_date=_days_ago(80))
            handoff = handoffs.handoff_open(by=gerente, client=debtor, kind="agency", agency="Cobranzas del Norte")
            handoffs.handoff_update(by=gerente, handoff=handoff, on=TODAY, recovered=Decimal("100.00"))

    client.force_login(request.getfixturevalue(role))
    add(1)
    with CaptureQueriesContext(connection) as one:
        assert client.get(_url("handoff_list")).status_code == 200
    add(6)
    with CaptureQueriesContext(connection) as many:
        response = client.get(_url("handoff_list"), {"kind": "agency", "agency": "norte"})
    assert len(response.context["handoffs"]) == 7
    assert len(many) == len(one) <= LIST_MAX


def test_the_client_panel_costs_one_query_and_hides_from_others(gerente, gestora, gestor, debtor, sent):
    request = RequestFactory().get("/")
    request.user = gestora
    gestora._morosos_roles = None  # roles read before counting
    from accounts.roles import roles_of

    roles_of(gestora)
    with CaptureQueriesContext(connection) as ctx:
        html = client_panel(request, debtor)
    assert len(ctx) == 1
    assert "Despacho Pérez" in html and "handoff-form" not in html  # no form for collectors
    quiet = make_client(by=gerente, collector=gestora)
    assert client_panel(request, quiet) == ""  # nothing to show a collector
    request.user = gerente
    assert "handoff-form" in client_panel(request, quiet)
