"""The dunning operations pages through the real stack (URL → view → form → service →
PostgreSQL → template): what goes out on a day, the notices, approvals, retries, letters and
the dunning panel of the client page, with their access rules and query counts."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.contrib.messages import get_messages
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts import services as ledger
from accounts.models import Interaction
from cobranza.engine import dispatch
from cobranza.engine.planner import plan
from cobranza.models import ClientDunning, InvoiceHold, Notice, Policy, PolicyStep
from cobranza.ops import selectors
from tests.factories import client_page_html, make_client, make_invoice

pytestmark = pytest.mark.django_db
TODAY = timezone.localdate()
TOMORROW = TODAY + dt.timedelta(days=1)
MX = ZoneInfo("America/Mexico_City")


def _days_ago(n: int) -> dt.date:
    return TODAY - dt.timedelta(days=n)


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def _timeline(client, text: str) -> bool:
    return Interaction.objects.filter(client=client, summary__contains=text).exists()


def _url(name, *args):
    return reverse(f"cobranza:{name}", args=args)


# --- data ----------------------------------------------------------------------------------


@pytest.fixture
def martillo(gerente, gestora):
    """Lucía's client, 61 days late on the regular ladder: its manager review needs approval."""
    client = make_client(by=gerente, collector=gestora, legal_name="Ferretería El Martillo")
    ledger.contact_create(by=gerente, client=client, name="Rosa Pagos", email="rosa@martillo.example")
    make_invoice(by=gerente, client=client, number="FM-1", amount="9000.00", due_date=_days_ago(61))
    return client


@pytest.fixture
def lupe(gerente, gestor):
    """Mario's client, 2 days late: an email reminder."""
    client = make_client(by=gerente, collector=gestor, legal_name="Abarrotes Doña Lupe")
    ledger.contact_create(by=gerente, client=client, name="Lupe", email="lupe@abarrotes.example")
    make_invoice(by=gerente, client=client, number="AL-1", amount="300.00", due_date=_days_ago(2))
    make_invoice(by=gerente, client=client, number="AL-2", amount="50.00", currency="USD", due_date=_days_ago(2))
    return client


@pytest.fixture
def planned(martillo, lupe):
    """Today's plan: the review awaiting approval (Martillo) and the email (Lupe)."""
    plan(today=TODAY)
    # Martillo's earlier steps are recorded as superseded by the review (docs/domain.md#pacing).
    going_out = Notice.objects.exclude(status=Notice.Status.SUPERSEDED)
    return {
        "review": going_out.get(client=martillo),
        "email": going_out.get(client=lupe),
    }


def _fail(notice, *, interrupted=False, reason="Envío rechazado: 550 No such user"):
    """What dispatch leaves behind after a permanent failure (or a worker that died mid-send)."""
    Notice.objects.filter(pk=notice.pk).update(
        status="failed",
        attempts=2,
        reason=reason,
        message_id="<notice-x@morosos.example>" if interrupted else "",
        body="Estimada Lupe: ..." if interrupted else "",
    )
    notice.refresh_from_db()
    return notice


# --- access --------------------------------------------------------------------------------

MANAGER_ONLY_GET = ["outbox", "approvals"]
STAFF_GET = ["notice_list", "letters"]


@pytest.mark.parametrize("name", MANAGER_ONLY_GET + STAFF_GET)
def test_anonymous_visitors_are_sent_to_the_login(client, name):
    response = client.get(_url(name))
    assert response.status_code == 302 and "/cuenta/entrar/" in response["Location"]


@pytest.mark.parametrize("name", MANAGER_ONLY_GET + STAFF_GET)
def test_a_user_without_role_gets_403(client, nobody, name):
    client.force_login(nobody)
    assert client.get(_url(name)).status_code == 403


@pytest.mark.parametrize("name", MANAGER_ONLY_GET)
def test_manager_pages_are_forbidden_to_collectors(client, gestora, name):
    client.force_login(gestora)
    assert client.get(_url(name)).status_code == 403


@pytest.mark.parametrize("name", MANAGER_ONLY_GET + STAFF_GET)
def test_managers_open_every_page(client, gerente, planned, name):
    client.force_login(gerente)
    assert client.get(_url(name)).status_code == 200


def test_every_post_needs_a_login_and_a_role(client, nobody, planned, martillo):
    invoice = martillo.invoices.get()
    notice = planned["review"]
    posts = [
        _url("notice_retry", notice.pk),
        _url("approval_decide"),
        _url("letters_mark_printed"),
        _url("client_pause", martillo.pk),
        _url("client_policy", martillo.pk),
        _url("invoice_hold", invoice.pk),
        _url("invoice_release", invoice.pk),
    ]
    gets = [_url("notice_detail", notice.pk), _url("letter_pdf", notice.pk)]
    for url in posts:
        response = client.post(url)
        assert response.status_code == 302 and "/cuenta/entrar/" in response["Location"], url
    for url in gets:
        response = client.get(url)
        assert response.status_code == 302 and "/cuenta/entrar/" in response["Location"], url
    client.force_login(nobody)
    for url in posts:
        assert client.post(url).status_code == 403, url
    for url in gets:
        assert client.get(url).status_code == 403, url


def test_collectors_cannot_decide_approvals_retry_or_set_a_policy(client, gestora, planned, martillo):
    client.force_login(gestora)
    review = planned["review"]
    response = client.post(_url("approval_decide"), {"action": "approve", "notices": [review.pk]})
    assert response.status_code == 403
    assert client.post(_url("notice_retry", review.pk)).status_code == 403
    assert client.post(_url("client_policy", martillo.pk), {"policy": ""}).status_code == 403
    review.refresh_from_db()
    assert review.status == "awaiting_approval"


def test_a_collector_reaches_only_her_own_clients(client, gestora, planned, martillo, lupe):
    """Lupe is Mario's client: every page and form of it is a 404 for Lucía."""
    client.force_login(gestora)
    email = planned["email"]
    invoice = lupe.invoices.first()
    assert client.get(_url("notice_detail", email.pk)).status_code == 404
    assert client.get(_url("letter_pdf", email.pk)).status_code == 404
    assert client.post(_url("client_pause", lupe.pk), {"action": "resume"}).status_code == 404
    assert client.post(_url("invoice_hold", invoice.pk), {"reason": "x"}).status_code == 404
    assert client.post(_url("invoice_release", invoice.pk)).status_code == 404
    assert not InvoiceHold.objects.exists()
    # Her own client's notice opens.
    assert client.get(_url("notice_detail", planned["review"].pk)).status_code == 200


def test_get_is_refused_on_forms_and_post_on_pages(client, gerente, planned):
    client.force_login(gerente)
    assert client.get(_url("approval_decide")).status_code == 405
    assert client.get(_url("notice_retry", planned["review"].pk)).status_code == 405
    assert client.post(_url("notice_list")).status_code == 405


# --- lo que sale ---------------------------------------------------------------------------


@pytest.fixture
def tomorrow_portfolio(gerente, gestora):
    """Invoices whose steps fall due tomorrow on several ladders and channels."""
    debtors = []
    for name, segment, due in [
        ("Pre-aviso", "regular", TOMORROW + dt.timedelta(days=3)),  # −3 email
        ("Vencida ayer", "regular", TOMORROW - dt.timedelta(days=1)),  # +1 email
        ("SMS", "regular", TOMORROW - dt.timedelta(days=7)),  # +7 SMS
        ("Revisión", "regular", TOMORROW - dt.timedelta(days=60)),  # +60 review, approval
        ("Carta", "alto-riesgo", TOMORROW - dt.timedelta(days=20)),  # +20 letter
    ]:
        debtor = make_client(by=gerente, collector=gestora, legal_name=f"Cliente {name}", segment_code=segment)
        make_invoice(by=gerente, client=debtor, amount="1000.00", due_date=due)
        make_invoice(by=gerente, client=debtor, amount="20.00", currency="USD", due_date=due)
        debtors.append(debtor)
    return debtors


def _run_dunning_dry(day: dt.date) -> dict:
    out = io.StringIO()
    call_command("run_dunning", "--today", day.isoformat(), "--dry-run", "--json", stdout=out)
    return json.loads(out.getvalue())


def test_outbox_shows_what_the_planner_would_plan_tomorrow_with_the_numbers_of_run_dunning(
    client, gerente, tomorrow_portfolio
):
    client.force_login(gerente)
    before = Notice.objects.count()
    response = client.get(_url("outbox"))
    assert response.status_code == 200
    assert Notice.objects.count() == before  # a simulation: nothing written

    expected = _run_dunning_dry(TOMORROW)["planned"]
    page_plan = response.context["plan"].as_dict()
    assert response.context["day"] == TOMORROW
    assert page_plan == {**expected, "dry_run": True}
    assert expected["notices_planned"] == 5 and expected["invoices_listed"] == 10
    assert sum(expected["by_channel"].values()) == 5 and {"email", "sms", "letter"} <= set(expected["by_channel"])

    # The same numbers are on the page, not only in the context.
    html = response.content.decode()
    assert f'data-notices-planned="{expected["notices_planned"]}"' in html
    assert f'data-invoices-listed="{expected["invoices_listed"]}"' in html
    by_channel = ",".join(f"{k}={v}" for k, v in expected["by_channel"].items())
    assert f'data-by-channel="{by_channel}"' in html
    for channel, n in expected["by_channel"].items():
        assert f'data-channel="{channel}" data-new="{n}"' in html

    outbox = response.context["outbox"]
    assert len(outbox.new_rows) == 5 and not outbox.new_truncated
    assert sum(t.new for t in outbox.by_step) == 5
    assert outbox.amounts == {"MXN": Decimal("5000.00"), "USD": Decimal("100.00")}
    assert outbox.needs_approval == 1
    for debtor in tomorrow_portfolio:
        assert reverse("client_detail", args=[debtor.pk]) in html
    assert "Lo que sale mañana" in html
    assert "Escalera regular" in html and "Escalera de alto riesgo" in html


def test_outbox_adds_notices_already_deferred_to_that_day(client, gerente, gestora, tomorrow_portfolio):
    deferred = make_client(by=gerente, collector=gestora, legal_name="Aplazado a mañana")
    make_invoice(by=gerente, client=deferred, amount="700.00", due_date=_days_ago(1))
    plan(today=TODAY)
    notice = Notice.objects.get(client=deferred)
    # The portfolio's own steps of today went out today: tomorrow its clients may hear from
    # us again (one notice per client and day, docs/domain.md#pacing).
    Notice.objects.exclude(pk=notice.pk).filter(status__in=Notice.OPEN_STATUSES).update(
        status="sent", sent_at=timezone.now()
    )
    # Contact rules deferred it to tomorrow morning (what dispatch writes on a deferral).
    morning = dt.datetime.combine(TOMORROW, dt.time(9, 0), tzinfo=ZoneInfo("America/Mexico_City"))
    Notice.objects.filter(pk=notice.pk).update(scheduled_at=morning, deferrals=1, reason="Fuera de horario")

    client.force_login(gerente)
    response = client.get(_url("outbox"), {"day": TOMORROW.isoformat()})
    outbox = response.context["outbox"]
    assert outbox.scheduled_total == 1 and outbox.plan.notices == 5
    [row] = outbox.scheduled_rows
    assert row["notice"] == notice and row["invoice_count"] == 1 and row["totals"] == {"MXN": Decimal("700.00")}
    email = next(c for c in outbox.by_channel if c.channel == "email")
    assert (email.new, email.scheduled, email.total) == (2, 1, 3)
    html = response.content.decode()
    assert _url("notice_detail", notice.pk) in html and "Aplazado" in html
    # Today's outbox does not list it.
    today = client.get(_url("outbox"), {"day": TODAY.isoformat()}).context["outbox"]
    assert notice not in [row["notice"] for row in today.scheduled_rows]


def test_outbox_says_when_there_are_more_rows_than_shown(client, gerente, tomorrow_portfolio, monkeypatch):
    monkeypatch.setattr(selectors, "OUTBOX_DETAIL", 2)
    client.force_login(gerente)
    response = client.get(_url("outbox"))
    outbox = response.context["outbox"]
    assert len(outbox.new_rows) == 2 and outbox.new_truncated
    assert "Se muestran 2 de 5 avisos nuevos" in response.content.decode()


@pytest.mark.parametrize("offset", [-1, 61])
def test_outbox_refuses_days_out_of_range_and_shows_tomorrow(client, gerente, offset):
    client.force_login(gerente)
    response = client.get(_url("outbox"), {"day": (TODAY + dt.timedelta(days=offset)).isoformat()})
    assert response.status_code == 200
    assert response.context["day"] == TOMORROW
    assert "Elija un día entre hoy y el" in response.content.decode()


def test_outbox_accepts_any_day_up_to_60_days_ahead(client, gerente, tomorrow_portfolio):
    client.force_login(gerente)
    far = TODAY + dt.timedelta(days=60)
    response = client.get(_url("outbox"), {"day": far.isoformat()})
    assert response.context["day"] == far
    assert response.context["plan"].as_dict() == {**_run_dunning_dry(far)["planned"], "dry_run": True}


# --- avisos --------------------------------------------------------------------------------


def _listed(response) -> list[int]:
    return [n.pk for n in response.context["notices"]]


def test_notice_list_filters(client, gerente, planned, martillo, lupe):
    client.force_login(gerente)
    review, email = planned["review"], planned["email"]
    url = _url("notice_list")
    # Martillo is 61 days late: the steps its review passed over are listed as superseded.
    superseded = set(Notice.objects.filter(status="superseded").values_list("pk", flat=True))
    assert superseded and set(Notice.objects.filter(client=martillo).values_list("pk", flat=True)) == {
        review.pk,
        *superseded,
    }
    assert set(_listed(client.get(url))) == {review.pk, email.pk, *superseded}
    assert set(_listed(client.get(url, {"status": "superseded"}))) == superseded
    assert "Reemplazado por un paso más firme" in client.get(url, {"status": "superseded"}).content.decode()
    assert _listed(client.get(url, {"status": "awaiting_approval"})) == [review.pk]
    assert _listed(client.get(url, {"channel": "email", "status": "planned"})) == [email.pk]
    assert _listed(client.get(url, {"q": "lupe"})) == [email.pk]
    assert _listed(client.get(url, {"q": martillo.tax_id, "status": "awaiting_approval"})) == [review.pk]
    regular = Policy.objects.get(segment__code="regular")
    assert len(_listed(client.get(url, {"policy": regular.pk}))) == 2 + len(superseded)
    other = Policy.objects.get(segment__code="alto-riesgo")
    assert _listed(client.get(url, {"policy": other.pk})) == []
    assert len(_listed(client.get(url, {"date_from": TODAY.isoformat(), "date_to": TODAY.isoformat()}))) == 2 + len(
        superseded
    )
    assert _listed(client.get(url, {"date_from": TOMORROW.isoformat()})) == []
    assert _listed(client.get(url, {"date_to": _days_ago(1).isoformat()})) == []
    # A bad value is ignored, the other filters still apply.
    assert _listed(client.get(url, {"status": "nonsense", "channel": "review"})) == [review.pk]


def test_failed_and_interrupted_notices_are_easy_to_find(client, gerente, planned):
    client.force_login(gerente)
    _fail(planned["email"], interrupted=True, reason="Envío interrumpido: no se sabe si salió.")
    response = client.get(_url("notice_list"))
    counts = response.context["counts"]
    assert (counts.failed, counts.interrupted, counts.awaiting_approval) == (1, 1, 1)
    html = response.content.decode()
    assert 'data-testid="failed-filter"' in html and "Fallidos" in html
    assert "Envío interrumpido" in html
    assert _listed(client.get(_url("notice_list"), {"status": "failed"})) == [planned["email"].pk]
    assert _listed(client.get(_url("notice_list"), {"status": "interrupted"})) == [planned["email"].pk]


def test_collectors_list_only_their_clients_notices(client, gestora, planned, martillo):
    client.force_login(gestora)
    response = client.get(_url("notice_list"))
    assert set(_listed(response)) == set(Notice.objects.filter(client=martillo).values_list("pk", flat=True))
    assert planned["review"].pk in _listed(response)
    assert "Abarrotes Doña Lupe" not in response.content.decode()


def _notices_for(n, *, by, collector, tag):
    for i in range(n):
        debtor = make_client(by=by, collector=collector, legal_name=f"{tag} {i}")
        make_invoice(by=by, client=debtor, amount="100.00", due_date=_days_ago(2))
        make_invoice(by=by, client=debtor, amount="10.00", currency="USD", due_date=_days_ago(2))


@pytest.mark.parametrize("role", ["gerente", "gestora"])
def test_notice_list_query_count_does_not_grow(client, request, gerente, gestora, role):
    client.force_login(request.getfixturevalue(role))
    _notices_for(3, by=gerente, collector=gestora, tag="A")
    plan(today=TODAY)
    with CaptureQueriesContext(connection) as few:
        assert client.get(_url("notice_list")).status_code == 200
    _notices_for(30, by=gerente, collector=gestora, tag="B")
    plan(today=TODAY - dt.timedelta(days=1))  # a second day of notices: the B clients' only
    Notice.objects.filter(status="planned").update(status="sent", sent_at=timezone.now())
    with CaptureQueriesContext(connection) as many:
        response = client.get(_url("notice_list"), {"status": "sent", "channel": "email", "q": "B"})
    assert response.context["page_obj"].paginator.count == 30
    assert len(many) == len(few) <= 9  # session, user, roles, policies, counts, count, page, totals


# --- detalle -------------------------------------------------------------------------------


def test_notice_detail_shows_the_notice_its_invoices_and_a_preview(client, gerente, planned, lupe):
    client.force_login(gerente)
    email = planned["email"]
    response = client.get(_url("notice_detail", email.pk))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Abarrotes Doña Lupe" in html and reverse("client_detail", args=[lupe.pk]) in html
    assert "Aviso de vencimiento" in html and "Escalera regular" in html
    assert "AL-1" in html and "AL-2" in html
    assert response.context["totals"] == {"MXN": Decimal("300.00"), "USD": Decimal("50.00")}
    assert response.context["is_preview"] and response.context["rendered"].body
    assert "AL-1" in response.context["rendered"].body
    assert "Vista previa con los datos de hoy" in html
    # The items show the days overdue at planning.
    assert [i.days_overdue for i in response.context["items"]] == [2, 2]


def test_a_sent_notice_shows_the_message_as_sent_and_its_message_id(client, gerente, planned):
    client.force_login(gerente)
    email = planned["email"]
    Notice.objects.filter(pk=email.pk).update(
        status="sent",
        sent_at=timezone.now(),
        recipient="lupe@abarrotes.example",
        subject="Saldo vencido de Abarrotes Doña Lupe",
        body="Texto tal como salió.",
        message_id="<notice-1.20260101@morosos.example>",
        attempts=1,
    )
    response = client.get(_url("notice_detail", email.pk))
    html = response.content.decode()
    assert not response.context["is_preview"]
    assert "Texto tal como salió." in html and "Saldo vencido de Abarrotes Doña Lupe" in html
    assert "&lt;notice-1.20260101@morosos.example&gt;" in html
    assert "lupe@abarrotes.example" in html


def test_a_review_step_detail_says_what_it_will_do(client, gerente, planned):
    client.force_login(gerente)
    response = client.get(_url("notice_detail", planned["review"].pk))
    assert "Se creará una tarea de revisión para Lucía Gestora." in response.content.decode()
    assert response.context["can_approve"] and response.context["can_cancel"]


def test_an_unknown_notice_is_a_404(client, gerente):
    client.force_login(gerente)
    assert client.get(_url("notice_detail", 999999)).status_code == 404


# --- aprobaciones --------------------------------------------------------------------------


@pytest.fixture
def three_reviews(gerente, gestora):
    reviews = []
    for i in range(3):
        debtor = make_client(by=gerente, collector=gestora, legal_name=f"Revisión {i}")
        make_invoice(by=gerente, client=debtor, amount="5000.00", due_date=_days_ago(60 + i))
    plan(today=TODAY)
    for notice in Notice.objects.filter(status="awaiting_approval").select_related("client"):
        reviews.append(notice)
    return reviews


def test_the_approval_queue_previews_each_notice(client, gerente, gestora, three_reviews):
    # A letter that needs approval (key accounts, +60): its text is previewed.
    key = make_client(by=gerente, collector=gestora, legal_name="Cuenta Clave", segment_code="cuenta-clave")
    ledger.contact_create(by=gerente, client=key, name="Ana Pagos", email="ana@clave.example")
    make_invoice(by=gerente, client=key, number="CC-1", amount="12000.00", due_date=_days_ago(61))
    plan(today=TODAY)
    client.force_login(gerente)
    response = client.get(_url("approvals"))
    assert response.status_code == 200
    entries = response.context["entries"]
    assert len(entries) == 4
    letter = next(e for e in entries if e["notice"].client == key)
    assert letter["rendered"] and "CC-1" in letter["rendered"].body and "Ana Pagos" in letter["rendered"].body
    review = next(e for e in entries if e["notice"].channel == "review")
    assert review["rendered"] is None and "tarea de revisión" in review["task_text"]
    html = response.content.decode()
    assert "Cuenta Clave" in html and "Aprobar seleccionados" in html


def test_approval_queue_query_count_does_not_grow(client, gerente, gestora):
    client.force_login(gerente)
    for i in range(2):
        debtor = make_client(by=gerente, collector=gestora, legal_name=f"R{i}")
        make_invoice(by=gerente, client=debtor, due_date=_days_ago(61))
    plan(today=TODAY)
    with CaptureQueriesContext(connection) as few:
        client.get(_url("approvals"))
    for i in range(15):
        debtor = make_client(by=gerente, collector=gestora, legal_name=f"S{i}")
        make_invoice(by=gerente, client=debtor, due_date=_days_ago(62))
        make_invoice(by=gerente, client=debtor, due_date=_days_ago(63), currency="USD")
    plan(today=TODAY)
    with CaptureQueriesContext(connection) as many:
        client.get(_url("approvals"))
    assert len(many) == len(few)


def test_approving_one_notice_plans_it_and_writes_the_timeline(client, gerente, three_reviews):
    client.force_login(gerente)
    notice = three_reviews[0]
    response = client.post(_url("approval_decide"), {"action": "approve", "notices": [notice.pk]}, follow=True)
    notice.refresh_from_db()
    assert notice.status == "planned" and notice.approved_by == gerente
    assert notice.scheduled_at <= timezone.now()
    assert notice.pk in dispatch.due_notice_ids(now=timezone.now())
    assert _timeline(notice.client, "Aviso aprobado")
    assert any("Aviso aprobado" in m for m in _messages(response))
    assert response.redirect_chain[-1][0] == _url("approvals")


def test_bulk_approval_approves_every_selected_notice(client, gerente, three_reviews):
    client.force_login(gerente)
    chosen = three_reviews[:2]
    response = client.post(_url("approval_decide"), {"action": "approve", "notices": [n.pk for n in chosen]})
    assert "2 avisos aprobados." in _messages(response)
    assert sorted(Notice.objects.filter(status="planned").values_list("pk", flat=True)) == sorted(n.pk for n in chosen)
    assert Notice.objects.get(pk=three_reviews[2].pk).status == "awaiting_approval"
    assert all(_timeline(n.client, "Aviso aprobado") for n in chosen)
    assert not _timeline(three_reviews[2].client, "Aviso aprobado")


def test_cancelling_needs_a_reason_and_is_logged(client, gerente, three_reviews):
    client.force_login(gerente)
    notice = three_reviews[0]
    response = client.post(_url("approval_decide"), {"action": "cancel", "notices": [notice.pk], "reason": "  "})
    assert "Indique el motivo de la cancelación." in _messages(response)
    notice.refresh_from_db()
    assert notice.status == "awaiting_approval"

    response = client.post(
        _url("approval_decide"), {"action": "cancel", "notices": [notice.pk], "reason": "Ya firmó un convenio"}
    )
    notice.refresh_from_db()
    assert notice.status == "cancelled" and notice.reason == "Ya firmó un convenio"
    assert _timeline(notice.client, "Aviso cancelado")
    assert any("Aviso cancelado" in m for m in _messages(response))


def test_deciding_twice_or_on_nothing_gives_a_clear_error(client, gerente, three_reviews):
    client.force_login(gerente)
    notice = three_reviews[0]
    client.post(_url("approval_decide"), {"action": "approve", "notices": [notice.pk]})
    response = client.post(_url("approval_decide"), {"action": "approve", "notices": [notice.pk]})
    assert any("ya no está pendiente de aprobación" in m for m in _messages(response))
    response = client.post(_url("approval_decide"), {"action": "approve"})
    assert "Seleccione al menos un aviso." in _messages(response)
    response = client.post(_url("approval_decide"), {"action": "approve", "notices": ["abc"]})
    assert response.status_code == 302 and _messages(response)
    response = client.post(_url("approval_decide"), {"action": "explode", "notices": [notice.pk]})
    assert response.status_code == 302 and _messages(response)


def test_the_next_parameter_must_stay_on_this_site(client, gerente, three_reviews):
    client.force_login(gerente)
    notice = three_reviews[0]
    response = client.post(
        _url("approval_decide"), {"action": "approve", "notices": [notice.pk], "next": "https://evil.example/"}
    )
    assert response["Location"] == _url("approvals")


# --- reintentar ----------------------------------------------------------------------------


def test_retrying_a_failed_notice_puts_it_back_in_the_queue(client, gerente, planned, lupe):
    client.force_login(gerente)
    notice = _fail(planned["email"], interrupted=True, reason="Envío interrumpido: no se sabe si salió.")
    before = timezone.now()
    response = client.post(_url("notice_retry", notice.pk))
    assert response["Location"] == _url("notice_detail", notice.pk)
    notice.refresh_from_db()
    assert notice.status == "planned"
    assert notice.attempts == 2  # kept
    assert before <= notice.scheduled_at <= timezone.now()
    assert notice.message_id == "" and notice.reason == ""
    # The dispatcher picks it up on its next pass (and does not take it for interrupted).
    assert notice.pk in dispatch.due_notice_ids(now=timezone.now())
    entry = Interaction.objects.get(client=lupe, summary__contains="de nuevo a la cola")
    assert entry.author == gerente and "Envío interrumpido" in entry.body
    assert any("de nuevo en la cola" in m for m in _messages(response))


def test_only_failed_notices_can_be_retried(client, gerente, planned):
    client.force_login(gerente)
    response = client.post(_url("notice_retry", planned["review"].pk))
    assert "Solo se puede reintentar un aviso fallido." in _messages(response)
    assert Notice.objects.get(pk=planned["review"].pk).status == "awaiting_approval"


def test_the_detail_of_a_failed_notice_offers_a_retry_to_managers_only(client, gerente, gestor, planned):
    notice = _fail(planned["email"])
    client.force_login(gerente)
    html = client.get(_url("notice_detail", notice.pk)).content.decode()
    assert _url("notice_retry", notice.pk) in html and "550 No such user" in html
    client.force_login(gestor)
    html = client.get(_url("notice_detail", notice.pk)).content.decode()
    assert _url("notice_retry", notice.pk) not in html


# --- cartas --------------------------------------------------------------------------------

LETTER_DUE = dt.date(2026, 3, 2)
LETTER_DAY = dt.date(2026, 3, 23)  # a Monday, no holiday: +21 days on the high-risk ladder (+20 letter)
LETTER_AT = dt.datetime.combine(LETTER_DAY, dt.time(10, 0), tzinfo=MX)


@pytest.fixture
def letter(settings, tmp_path, gerente, gestora):
    """A real letter: planned on the high-risk ladder, dispatched, its PDF written."""
    settings.MEDIA_ROOT = tmp_path / "media"
    debtor = make_client(
        by=gerente,
        collector=gestora,
        legal_name="Transportes Riesgo",
        segment_code="alto-riesgo",
        address="Av. Siempre Viva 742\nCDMX",
    )
    ledger.contact_create(by=gerente, client=debtor, name="Carlos Pagos", email="carlos@riesgo.example")
    make_invoice(by=gerente, client=debtor, number="TR-1", amount="8000.00", due_date=LETTER_DUE)
    plan(today=LETTER_DAY, now=LETTER_AT)
    notice = Notice.objects.get(client=debtor, channel="letter")
    assert dispatch.dispatch(notice.pk, now=LETTER_AT).outcome == "sent"
    notice.refresh_from_db()
    return notice


def test_letters_to_print_are_listed_with_their_pdf(client, gestora, letter):
    client.force_login(gestora)
    response = client.get(_url("letters"))
    assert [n.pk for n in response.context["letters"]] == [letter.pk]
    html = response.content.decode()
    assert _url("letter_pdf", letter.pk) in html and "Transportes Riesgo" in html
    pdf = client.get(_url("letter_pdf", letter.pk))
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    assert b"".join(pdf.streaming_content).startswith(b"%PDF")
    assert "no-store" in pdf["Cache-Control"]


def test_another_collectors_letter_is_not_found(client, gestor, letter):
    client.force_login(gestor)
    assert client.get(_url("letter_pdf", letter.pk)).status_code == 404
    assert client.get(_url("letters")).context["page_obj"].paginator.count == 0
    response = client.post(_url("letters_mark_printed"), {"notices": [letter.pk]})
    assert response.status_code == 302 and _messages(response)
    letter.refresh_from_db()
    assert letter.printed_at is None


def test_a_letter_without_its_pdf_or_a_non_letter_is_a_404(client, gerente, letter, planned):
    client.force_login(gerente)
    assert client.get(_url("letter_pdf", planned["email"].pk)).status_code == 404
    from cobranza.engine.letters import letter_path

    letter_path(letter).unlink()
    assert client.get(_url("letter_pdf", letter.pk)).status_code == 404


def test_marking_letters_printed(client, gestora, letter):
    client.force_login(gestora)
    response = client.post(_url("letters_mark_printed"), {"notices": [letter.pk]})
    assert "1 carta marcada como impresa." in _messages(response)
    letter.refresh_from_db()
    assert letter.printed_at is not None and letter.printed_by == gestora
    assert _timeline(letter.client, "Carta impresa")
    # "Sin imprimir" no longer lists it; "Todas" does, with who printed it.
    assert list(client.get(_url("letters")).context["letters"]) == []
    response = client.get(_url("letters"), {"show": "all"})
    assert [n.pk for n in response.context["letters"]] == [letter.pk]
    assert "Lucía Gestora" in response.content.decode()
    # A second time changes nothing.
    response = client.post(_url("letters_mark_printed"), {"notices": [letter.pk]})
    assert any("ya estaban impresas" in m for m in _messages(response))
    response = client.post(_url("letters_mark_printed"), {})
    assert "Seleccione al menos una carta." in _messages(response)


def test_the_notice_detail_of_a_letter_links_its_pdf(client, gerente, letter):
    client.force_login(gerente)
    response = client.get(_url("notice_detail", letter.pk))
    assert response.context["letter_file"]
    html = response.content.decode()
    assert _url("letter_pdf", letter.pk) in html and "Marcar como impresa" in html
    assert "Av. Siempre Viva 742<br>CDMX" in html


# --- el panel del cliente --------------------------------------------------------------------


def _panel(response) -> str:
    html = response.content.decode()
    assert 'data-testid="dunning-panel"' in html
    return html


def test_the_client_page_shows_the_dunning_panel(client, gestora, planned, martillo):
    client.force_login(gestora)
    html = _panel(client.get(reverse("client_detail", args=[martillo.pk]), {"tab": "cobranza"}))
    assert "Escalera regular" in html and "La de su segmento" in html
    assert "FM-1" in html
    assert "Revisión del gerente: convenio, agencia o vía judicial" in html  # last notice
    assert "Pendiente de aprobación" in html
    assert "Recordatorios activos." in html
    # Collectors do not get the policy form.
    assert _url("client_policy", martillo.pk) not in html
    assert _url("client_pause", martillo.pk) in html


def test_a_collector_pauses_her_client_until_a_date_and_resumes(client, gestora, martillo):
    client.force_login(gestora)
    until = TODAY + dt.timedelta(days=10)
    response = client.post(
        _url("client_pause", martillo.pk), {"action": "pause", "until": until.isoformat(), "reason": "Convenio"}
    )
    assert response["Location"] == reverse("client_detail", args=[martillo.pk]) + "?tab=cobranza#cobranza"
    dunning = ClientDunning.objects.get(client=martillo)
    assert dunning.paused_until == until and dunning.pause_reason == "Convenio"
    assert _timeline(martillo, "Recordatorios en pausa")
    html = client_page_html(client, martillo.pk)
    assert 'data-testid="pause-badge"' in html and "Convenio" in html
    # Nothing is planned while paused.
    assert plan(today=TODAY).notices == 0

    client.post(_url("client_pause", martillo.pk), {"action": "resume"})
    dunning.refresh_from_db()
    assert dunning.paused_until is None and dunning.pause_reason == ""
    assert _timeline(martillo, "Recordatorios reanudados")


@pytest.mark.parametrize(
    "data, error",
    [
        ({"action": "pause", "until": (TODAY - dt.timedelta(days=1)).isoformat(), "reason": "x"}, "ya pasó"),
        ({"action": "pause", "until": (TODAY + dt.timedelta(days=5)).isoformat(), "reason": " "}, "motivo"),
        ({"action": "pause", "until": "", "reason": "Convenio"}, "hasta qué fecha"),
        ({"action": "pause", "until": "31/02/2026", "reason": "Convenio"}, "fecha válida"),
        ({"action": "bogus"}, "opción válida"),
    ],
)
def test_a_bad_pause_is_refused_with_a_clear_message(client, gestora, martillo, data, error):
    client.force_login(gestora)
    response = client.post(_url("client_pause", martillo.pk), data)
    assert response.status_code == 302
    assert any(error in m for m in _messages(response)), _messages(response)
    assert not ClientDunning.objects.filter(client=martillo, paused_until__isnull=False).exists()


def test_a_manager_gives_a_client_its_own_policy_and_goes_back_to_the_segments(client, gerente, martillo):
    client.force_login(gerente)
    own = Policy.objects.get(segment__code="alto-riesgo")
    html = client_page_html(client, martillo.pk)
    assert _url("client_policy", martillo.pk) in html
    response = client.post(_url("client_policy", martillo.pk), {"policy": own.pk})
    assert any("Escalera de alto riesgo" in m for m in _messages(response))
    assert ClientDunning.objects.get(client=martillo).policy == own
    html = client_page_html(client, martillo.pk)
    assert "Política propia del cliente" in html
    assert _timeline(martillo, "Política de cobranza: Escalera de alto riesgo")

    response = client.post(_url("client_policy", martillo.pk), {"policy": ""})
    assert ClientDunning.objects.get(client=martillo).policy is None
    assert any("política de su segmento" in m for m in _messages(response))
    response = client.post(_url("client_policy", martillo.pk), {"policy": "999999"})
    assert "Esa política ya no existe." in _messages(response)


def test_holding_and_releasing_an_invoice(client, gestora, martillo):
    client.force_login(gestora)
    invoice = martillo.invoices.get()
    until = TODAY + dt.timedelta(days=20)
    response = client.post(_url("invoice_hold", invoice.pk), {"reason": "Nota de crédito en trámite", "until": until})
    assert response["Location"].endswith("?tab=cobranza#cobranza")
    hold = InvoiceHold.objects.get(invoice=invoice)
    assert hold.until == until and hold.created_by == gestora
    assert _timeline(martillo, "Factura FM-1 retenida")
    html = client_page_html(client, martillo.pk)
    assert 'data-testid="hold-badge"' in html and "Nota de crédito en trámite" in html
    assert _url("invoice_release", invoice.pk) in html
    assert plan(today=TODAY).notices == 0  # held: out of the ladder

    client.post(_url("invoice_release", invoice.pk))
    assert not InvoiceHold.objects.exists()
    assert _timeline(martillo, "Factura FM-1 liberada")


@pytest.mark.parametrize(
    "data, error",
    [
        ({"reason": ""}, "Indique el motivo de la retención."),
        ({"reason": "x", "until": (TODAY - dt.timedelta(days=1)).isoformat()}, "La fecha ya pasó"),
        ({"reason": "x", "until": "mañana"}, "fecha válida"),
    ],
)
def test_a_bad_hold_is_refused_with_a_clear_message(client, gestora, martillo, data, error):
    client.force_login(gestora)
    invoice = martillo.invoices.get()
    response = client.post(_url("invoice_hold", invoice.pk), data)
    assert response.status_code == 302
    assert any(error in m for m in _messages(response)), _messages(response)
    assert not InvoiceHold.objects.exists()


def test_the_panel_says_which_step_each_invoice_reaches_next_and_when(client, gerente, gestora):
    debtor = make_client(by=gerente, collector=gestora, legal_name="Escalera")
    not_due = make_invoice(by=gerente, client=debtor, number="E-1", due_date=TODAY + dt.timedelta(days=10))
    late = make_invoice(by=gerente, client=debtor, number="E-2", due_date=_days_ago(3))
    plan(today=TODAY)  # E-2 gets the +1 email today
    panel = selectors.client_dunning_panel(debtor)
    rows = {r.invoice.number: r for r in panel.invoices}
    assert rows["E-1"].next_step.offset_days == -3
    assert rows["E-1"].next_on == not_due.due_date - dt.timedelta(days=3)
    assert rows["E-2"].reached.offset_days == 1
    assert rows["E-2"].next_step.offset_days == 7 and rows["E-2"].next_on == late.due_date + dt.timedelta(days=7)

    # A pause moves the dates; a hold without a date stops the invoice.
    ledger_until = TODAY + dt.timedelta(days=30)
    from cobranza.ops import services

    services.client_pause(by=gerente, client=debtor, until=ledger_until, reason="Convenio")
    services.invoice_hold(by=gerente, invoice=late, until=None, reason="Aclaración")
    panel = selectors.client_dunning_panel(debtor)
    rows = {r.invoice.number: r for r in panel.invoices}
    assert panel.paused
    # After the pause the pre-due reminder is stale; the highest due step is planned then.
    assert rows["E-1"].next_on == ledger_until + dt.timedelta(days=1)
    assert rows["E-1"].next_step.offset_days == 15
    assert rows["E-2"].next_step is None and rows["E-2"].note == "Retenida hasta que se libere."


def test_next_step_mirrors_the_planner_rules():
    steps = [
        PolicyStep(position=1, offset_days=-3),
        PolicyStep(position=2, offset_days=1),
        PolicyStep(position=3, offset_days=7),
    ]
    due = dt.date(2026, 3, 10)
    step, day = selectors.next_step_for(due_date=due, steps=steps, reached_position=0, start=dt.date(2026, 3, 1))
    assert (step.position, day) == (1, dt.date(2026, 3, 7))
    # Skipped past several steps: only the latest due is planned.
    step, day = selectors.next_step_for(due_date=due, steps=steps, reached_position=0, start=dt.date(2026, 3, 20))
    assert (step.position, day) == (3, dt.date(2026, 3, 20))
    step, day = selectors.next_step_for(due_date=due, steps=steps, reached_position=3, start=dt.date(2026, 3, 20))
    assert (step, day) == (None, None)


@pytest.mark.parametrize("role", ["gerente", "gestora"])
def test_the_panel_costs_the_same_queries_whatever_the_invoices_and_notices(client, request, gerente, gestora, role):
    client.force_login(request.getfixturevalue(role))
    debtor = make_client(by=gerente, collector=gestora)
    url = reverse("client_detail", args=[debtor.pk])

    def grow(n, tag, days_late):
        for i in range(n):
            invoice = make_invoice(
                by=gerente, client=debtor, number=f"{tag}-{i}", due_date=_days_ago(days_late + (i % 3))
            )
            if i % 2:
                ledger_hold(invoice)

    from cobranza.ops import services

    def ledger_hold(invoice):
        services.invoice_hold(by=gerente, invoice=invoice, until=TODAY + dt.timedelta(days=3), reason="Revisión")

    grow(2, "A", 2)
    plan(today=TODAY - dt.timedelta(days=1))
    with CaptureQueriesContext(connection) as few:
        assert client.get(url).status_code == 200
    grow(25, "B", 8)
    for i in range(12):
        day = TODAY - dt.timedelta(days=11 - i)
        plan(today=day)
        # What dispatch does with the day's notice: the next may be planned the next day.
        Notice.objects.filter(client=debtor, status__in=Notice.OPEN_STATUSES).update(
            status="sent", sent_at=dt.datetime.combine(day, dt.time(10), tzinfo=MX)
        )
    services.client_pause(by=gerente, client=debtor, until=TOMORROW, reason="Convenio")
    with CaptureQueriesContext(connection) as many:
        assert client.get(url).status_code == 200
    assert len(many) == len(few)
    assert Notice.objects.filter(client=debtor).count() >= 2


def test_the_panel_is_hidden_from_nobody_and_another_collector(client, gestor, martillo):
    client.force_login(gestor)
    assert client.get(reverse("client_detail", args=[martillo.pk])).status_code == 404


def test_a_written_off_client_shows_why_nothing_goes_out(client, gerente, gestora):
    debtor = make_client(by=gerente, collector=gestora, legal_name="Castigado")
    make_invoice(by=gerente, client=debtor, due_date=_days_ago(5))
    ledger.client_update(by=gerente, client=debtor, status="written_off")
    client.force_login(gerente)
    html = client_page_html(client, debtor.pk)
    assert re.search(r"Cliente castigado: no se envían avisos\.", html)


# --- approvals with live facts: today's balances, warnings, blocked hand-offs -------------------


@pytest.fixture
def handoff(gerente, gestora):
    """An agency hand-off (esporádico ladder, +25 days, needs approval) planned over three
    invoices, then overtaken by events before a manager looks at it."""
    debtor = make_client(by=gerente, collector=gestora, legal_name="Llantera La Rueda", segment_code="esporadico")
    a = make_invoice(by=gerente, client=debtor, number="LR-1", amount="15331.58", due_date=_days_ago(40))
    b = make_invoice(by=gerente, client=debtor, number="LR-2", amount="2000.00", due_date=_days_ago(35))
    c = make_invoice(by=gerente, client=debtor, number="LR-3", amount="3000.00", due_date=_days_ago(30))
    plan(today=TODAY)
    notice = Notice.objects.get(client=debtor, status="awaiting_approval")
    assert notice.channel == "agency" and notice.items.count() == 3
    return {"client": debtor, "notice": notice, "a": a, "b": b, "c": c}


def test_an_approval_card_rereads_balances_and_drops_what_no_longer_applies(client, gerente, handoff):
    debtor, a, b = handoff["client"], handoff["a"], handoff["b"]
    ledger.payment_record(
        by=gerente,
        client=debtor,
        amount=Decimal("7000.00"),
        received_on=TODAY,
        allocations=[
            ledger.AllocationRequest(invoice_id=a.pk, amount=Decimal("5000.00")),
            ledger.AllocationRequest(invoice_id=b.pk, amount=Decimal("2000.00")),
        ],
    )
    client.force_login(gerente)
    (entry,) = client.get(_url("approvals")).context["entries"]
    assert [i.invoice.number for i in entry["items"]] == ["LR-1", "LR-3"]
    assert entry["totals"] == {"MXN": Decimal("13331.58")}  # 10,331.58 + 3,000.00, not 20,331.58
    assert [(i.invoice.number, why) for i, why in entry["dropped"]] == [("LR-2", "Pagada")]
    assert entry["warnings"] == [f"Pagó $7,000.00 el {TODAY.strftime('%d/%m/%Y')}, después de planearse este aviso."]
    assert entry["blocked"] == ""
    html = client.get(_url("approvals")).content.decode()
    assert "$10,331.58" in html and "$15,331.58" not in html
    assert "Ya no va en el aviso: Pagada" in html


def test_a_handoff_is_blocked_while_a_promise_or_a_dispute_runs(client, gerente, gestora, handoff):
    from cobranza.workspace import services as workspace

    debtor, notice = handoff["client"], handoff["notice"]
    workspace.dispute_open(
        by=gestora, client=debtor, invoices=[handoff["c"]], reason="price", description="Precio distinto al pactado"
    )
    workspace.commitment_create(
        by=gestora,
        client=debtor,
        kind="promise",
        installments=[(TODAY + dt.timedelta(days=7), Decimal("2000.00"))],
        invoices=[handoff["b"]],
    )
    client.force_login(gerente)
    (entry,) = client.get(_url("approvals")).context["entries"]
    assert [(i.invoice.number, why) for i, why in entry["dropped"]] == [
        ("LR-2", "Con un compromiso de pago vigente"),
        ("LR-3", "En disputa"),
    ]
    assert any(w.startswith("Promesa de pago vigente por $2,000.00") for w in entry["warnings"])
    assert any(w.startswith("Disputa abierta desde el") for w in entry["warnings"])
    assert "no se envía a agencia ni a jurídico" in entry["blocked"]
    html = client.get(_url("approvals")).content.decode()
    assert 'data-testid="approval-blocked"' in html and "disabled" in html
    # The page's word is the rule: approving anyway is refused, and nothing changes.
    response = client.post(_url("approval_decide"), {"action": "approve", "notices": [notice.pk]})
    assert response.status_code == 302
    assert any("no se envía a agencia" in m for m in _messages(response))
    notice.refresh_from_db()
    assert notice.status == "awaiting_approval"


def test_a_notice_with_nothing_left_to_collect_cannot_be_approved(gerente, handoff):
    from cobranza.ops import services as ops

    debtor = handoff["client"]
    ledger.payment_record(by=gerente, client=debtor, amount=Decimal("20331.58"), received_on=TODAY)
    with pytest.raises(ValidationError, match="Ya no queda ninguna factura"):
        ops.notice_approve(by=gerente, notice=handoff["notice"])


def test_the_approvals_page_costs_a_fixed_number_of_queries(client, gerente, gestora, handoff):
    client.force_login(gerente)
    with CaptureQueriesContext(connection) as few:
        assert client.get(_url("approvals")).status_code == 200
    for i in range(6):
        debtor = make_client(by=gerente, collector=gestora, legal_name=f"Otra {i}", segment_code="esporadico")
        make_invoice(by=gerente, client=debtor, amount="5000.00", due_date=_days_ago(30 + i))
        ledger.payment_record(by=gerente, client=debtor, amount=Decimal("100.00"), received_on=TODAY)
    plan(today=TODAY)
    with CaptureQueriesContext(connection) as many:
        assert len(client.get(_url("approvals")).context["entries"]) == 7
    assert len(many) == len(few)
