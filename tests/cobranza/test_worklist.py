"""The collector's day ("Mi cartera hoy") and the calendar through the real stack: the
priority score with hand-computed expectations, the reasons shown per row, when a next action
counts as done, who sees which queue, reassignment, tasks marked done, the calendar, and
query counts that do not grow with the rows."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format

from accounts import services as ledger
from accounts.models import Interaction
from cobranza.models import (
    ClientDunning,
    ClientProfile,
    CollectorTask,
    Commitment,
    Installment,
    Notice,
    Policy,
    TaskKind,
    TaskStatus,
)
from cobranza.replies import services as replies
from cobranza.worklist import selectors as wl
from cobranza.worklist import services as services_tasks
from tests.factories import make_client, make_invoice

pytestmark = pytest.mark.django_db
TODAY = timezone.localdate()
YESTERDAY = TODAY - dt.timedelta(days=1)


def _days_ago(n: int) -> dt.date:
    return TODAY - dt.timedelta(days=n)


def _url(name, *args):
    return reverse(f"cobranza:{name}", args=args)


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


# --- builders (rows the planner, dispatch and the commitment judge would write) -------------


def _task(client, kind=TaskKind.CALL, *, due_on=TODAY, assigned_to="collector", title="", notice=None, **fields):
    if assigned_to == "collector":
        assigned_to = client.collector
    return CollectorTask.objects.create(
        client=client,
        kind=kind,
        title=title or f"{TaskKind(kind).label}: {client.display_name}",
        assigned_to=assigned_to,
        due_on=due_on,
        notice=notice,
        **fields,
    )


def _ladder_call(client, *, position=4, due_on=TODAY):
    """A call task created by the ladder's call step (regular ladder: step 4, +15 days)."""
    step = Policy.objects.get(segment__code="regular").steps.get(position=position)
    assert step.channel == "call"
    notice = Notice.objects.create(
        client=client,
        step=step,
        channel="call",
        planned_for=due_on,
        scheduled_at=timezone.now(),
        status="sent",
        sent_at=timezone.now(),
    )
    return _task(client, TaskKind.CALL, due_on=due_on, notice=notice, title=f"{step.name}: F-1")


def _commitment(client, *, kind="promise", status="open", resolved_on=None, total="5000.00", dates=((TODAY, None),)):
    commitment = Commitment.objects.create(
        client=client,
        kind=kind,
        status=status,
        currency=client.currency,
        total=Decimal(total),
        made_on=_days_ago(20),
        resolved_on=resolved_on if status != "open" else None,
    )
    for number, (when, amount) in enumerate(dates, start=1):
        Installment.objects.create(commitment=commitment, number=number, due_on=when, amount=Decimal(amount or total))
    return commitment


def _broken(client, *, days_ago=10, status="broken"):
    return _commitment(client, status=status, resolved_on=_days_ago(days_ago), dates=((_days_ago(days_ago + 1), None),))


def _profile(client, computed, override=""):
    return ClientProfile.objects.create(
        client=client, computed=computed, override=override, override_reason="Revisado" if override else ""
    )


def _next_action(client, by, *, on=TODAY, summary="Llamar para confirmar el pago", kind="call"):
    return ledger.interaction_log(by=by, client=client, kind=kind, summary=summary, next_action_on=on)


# --- the portfolio of the ordering test -------------------------------------------------------


@pytest.fixture
def portfolio(gerente, gestora, gestor):
    """Lucía's clients, with scores computed by hand (see each comment; the weights are in
    docs/domain.md#worklist-ranking), plus noise that must stay out of her queue."""
    # A · regular (weight 2 → +5): at risk 10,000 × 15 % (47 days) + 2,000 × 5 % (10 days) =
    # 1,600 → ⌊10·log10 1,600⌋ = 32; one broken promise in 90 days (another, 100 days ago, is
    # too old) → 20; a ladder call → 15; negligent → +15.  32 + 20 + 15 + 15 + 5 = 87
    a = make_client(by=gerente, collector=gestora, legal_name="Aceros Atlas", segment_code="regular")
    make_invoice(by=gerente, client=a, amount="10000.00", due_date=_days_ago(47))
    make_invoice(by=gerente, client=a, amount="2000.00", due_date=_days_ago(10))
    make_invoice(by=gerente, client=a, amount="7000.00", due_date=TODAY + dt.timedelta(days=5))  # not due
    _profile(a, "negligent")
    _broken(a, days_ago=10)
    _broken(a, days_ago=100)
    _ladder_call(a)

    # B · cuenta clave (weight 4 → +15): at risk 500 × 5 % = 25 → 13; a next action for today
    # → 10; computed chronic but overridden to good payer → −10.  13 + 10 − 10 + 15 = 28
    b = make_client(by=gerente, collector=gestora, legal_name="Botica Bella", segment_code="cuenta-clave")
    make_invoice(by=gerente, client=b, amount="500.00", due_date=_days_ago(5))
    _profile(b, "chronic", override="good")
    _next_action(b, gestora)

    # C · esporádico (weight 1 → 0): at risk 150,000 × 75 % (130 days) = 112,500 → 50; a
    # promise due today → 40; four broken or partial promises → capped at 40; a task 2 days
    # late → 15; a next action from last week → 10; chronic → +10.
    # 50 + 40 + 40 + 15 + 10 + 10 = 165
    c = make_client(by=gerente, collector=gestora, legal_name="Cementos del Centro", segment_code="esporadico")
    make_invoice(by=gerente, client=c, amount="150000.00", due_date=_days_ago(130))
    _profile(c, "chronic")
    for days, status in ((5, "broken"), (30, "partial"), (60, "broken"), (89, "broken")):
        _broken(c, days_ago=days, status=status)
    _commitment(c, total="5000.00", dates=((TODAY, None),))
    _task(c, TaskKind.FIND_CONTACT, due_on=_days_ago(2), title="Conseguir un teléfono del área de pagos")
    _next_action(c, gestora, on=_days_ago(7), summary="Quedó en enviar el comprobante")

    # D · regular (+5): nothing overdue; an installment of a plan was due yesterday → 40.
    # 40 + 5 = 45
    d = make_client(by=gerente, collector=gestora, legal_name="Distribuidora Delta", segment_code="regular")
    make_invoice(by=gerente, client=d, amount="3000.00", due_date=TODAY + dt.timedelta(days=20))
    _commitment(
        d,
        kind="plan",
        total="3000.00",
        dates=((_days_ago(31), "1000.00"), (YESTERDAY, "1000.00"), (TODAY + dt.timedelta(days=30), "1000.00")),
    )
    Installment.objects.filter(commitment__client=d, number=1).update(status="kept", covered=Decimal("1000.00"))

    # E · regular (+5): nothing due today (a next action already followed up, a task done, a
    # task for tomorrow, a managers' task) but 90,000 overdue for 200 days: at risk 67,500
    # → 48.  48 + 5 = 53 — a quiet large balance ranks above smaller ones with things due.
    e = make_client(by=gerente, collector=gestora, legal_name="Eléctrica Este")
    make_invoice(by=gerente, client=e, amount="90000.00", due_date=_days_ago(200))
    # (Both entries are from earlier days: a conversation today would mean she was attended.)
    now = timezone.now()
    ledger.interaction_log(
        by=gestora,
        client=e,
        kind="call",
        summary="Llamar para confirmar el pago",
        next_action_on=YESTERDAY,
        occurred_at=now - dt.timedelta(days=2),
    )
    ledger.interaction_log(
        by=gestora,
        client=e,
        kind="email",
        summary="Le envié el estado de cuenta",
        occurred_at=now - dt.timedelta(days=1),
    )
    _task(e, due_on=YESTERDAY, status=TaskStatus.DONE)
    _task(e, due_on=TODAY + dt.timedelta(days=1))
    _task(e, TaskKind.ESCALATION, assigned_to=None)
    # Out of her queue: another collector's client; a balance under the policy's tolerance
    # (10.00) with nothing due; a disputed balance; a balance whose ladder is paused.
    f = make_client(by=gerente, collector=gestor, legal_name="Ferretería Fénix")
    make_invoice(by=gerente, client=f, amount="1000.00", due_date=_days_ago(3))
    _task(f)
    g = make_client(by=gerente, collector=gestora, legal_name="Granja Gris")
    make_invoice(by=gerente, client=g, amount="9.46", due_date=_days_ago(40))
    h = make_client(by=gerente, collector=gestora, legal_name="Hielos Huerta")
    disputed = make_invoice(by=gerente, client=h, amount="8000.00", due_date=_days_ago(40))
    ledger.invoice_set_status(by=gerente, invoice=disputed, status="disputed", reason="Mercancía dañada")
    i = make_client(by=gerente, collector=gestora, legal_name="Imprenta Iris")
    make_invoice(by=gerente, client=i, amount="8000.00", due_date=_days_ago(40))
    ClientDunning.objects.create(client=i, paused_until=TODAY + dt.timedelta(days=3), pause_reason="Negociando")
    return {"a": a, "b": b, "c": c, "d": d, "e": e, "f": f, "g": g, "h": h, "i": i}


def _queue(user, scope=None, today=TODAY):
    scope = scope or wl.Scope.of_collector(user)
    clients = list(wl.worklist(user=user, scope=scope, today=today))
    return clients, wl.worklist_rows(clients, user=user, scope=scope, today=today)


# --- the score and the order ------------------------------------------------------------------


def test_it_orders_the_queue_by_the_hand_computed_score(portfolio, gestora):
    clients, rows = _queue(gestora)
    assert [(c.legal_name, c.score) for c in clients] == [
        ("Cementos del Centro", 165),
        ("Aceros Atlas", 87),
        ("Eléctrica Este", 53),
        ("Distribuidora Delta", 45),
        ("Botica Bella", 28),
    ]
    c, a, e, d, b = clients
    parts = ("risk_points", "promise_points", "broken_points", "task_points", "next_points", "profile_points")
    assert [getattr(a, p) for p in (*parts, "segment_points")] == [32, 0, 20, 15, 0, 15, 5]
    assert [getattr(c, p) for p in (*parts, "segment_points")] == [50, 40, 40, 15, 10, 10, 0]
    assert (a.at_risk, a.at_risk_currency) == (Decimal("1600.00"), "MXN")
    assert (c.at_risk, e.at_risk, d.at_risk) == (Decimal("112500.00"), Decimal("67500.00"), Decimal("0"))
    assert (c.broken_count, c.task_count, c.promise_count, c.next_count) == (4, 1, 1, 1)
    assert (e.task_count, e.promise_count, e.next_count) == (0, 0, 0)
    assert b.profile_effective == "good" and b.profile_points == -10
    assert rows[1].formula == "Importe en riesgo 32 + Promesas incumplidas 20 + Tareas 15 + Perfil 15 + Segmento 5 = 87"
    assert rows[4].formula == "Importe en riesgo 13 + Seguimientos 10 − Perfil 10 + Segmento 15 = 28"


def test_equal_scores_put_the_oldest_overdue_first(gerente, gestora):
    newer = make_client(by=gerente, collector=gestora, legal_name="A Nueva")
    older = make_client(by=gerente, collector=gestora, legal_name="Z Vieja")
    make_invoice(by=gerente, client=newer, amount="1500.00", due_date=_days_ago(3))
    make_invoice(by=gerente, client=older, amount="1500.00", due_date=_days_ago(20))
    _task(newer)
    _task(older)
    clients, _rows = _queue(gestora)
    assert [c.legal_name for c in clients] == ["Z Vieja", "A Nueva"]
    # 1,500 × 5 % = 75 → 18; a task → 15; regular → +5.
    assert clients[0].score == clients[1].score == 18 + 15 + 5


def test_the_amount_at_risk_uses_the_largest_total_in_one_currency(gerente, gestora):
    debtor = make_client(by=gerente, collector=gestora)
    make_invoice(by=gerente, client=debtor, amount="900.00", due_date=_days_ago(3))
    make_invoice(by=gerente, client=debtor, amount="600.00", currency="USD", due_date=_days_ago(3))
    make_invoice(by=gerente, client=debtor, amount="600.00", currency="USD", due_date=_days_ago(4))
    _task(debtor)
    (client,), (row,) = _queue(gestora)
    # MXN 900 × 5 % = 45, USD 1,200 × 5 % = 60 → 17: never 1,500 of mixed money.
    assert client.overdue_max == Decimal("1200.00")
    assert (client.at_risk, client.at_risk_currency, client.risk_points) == (Decimal("60.00"), "USD", 17)
    assert [(t.currency, t.open_balance, t.overdue) for t in row.totals] == [
        ("MXN", Decimal("900.00"), Decimal("900.00")),
        ("USD", Decimal("1200.00"), Decimal("1200.00")),
    ]


# --- named scenarios (issue: "a ranking a collections manager can defend") ---------------------


def test_a_large_old_balance_ranks_above_a_tiny_one_with_two_due_items(gerente, gestora):
    large = make_client(by=gerente, collector=gestora, legal_name="Saldo Grande y Viejo")
    make_invoice(by=gerente, client=large, amount="358949.24", due_date=_days_ago(75))
    tiny = make_client(by=gerente, collector=gestora, legal_name="Saldo Diminuto")
    make_invoice(by=gerente, client=tiny, amount="9.46", due_date=_days_ago(75))
    _task(tiny)
    _task(tiny, TaskKind.REVIEW)
    clients, rows = _queue(gestora)
    assert [c.legal_name for c in clients] == ["Saldo Grande y Viejo", "Saldo Diminuto"]
    # 358,949.24 × 30 % (61–90 days) = 107,684.77 → 50; regular +5. The $9.46 is under the
    # policy's tolerance (10.00): nothing at risk; two tasks → 30; regular +5.
    assert (clients[0].at_risk, clients[0].score) == (Decimal("107684.77"), 55)
    assert (clients[1].at_risk, clients[1].score) == (Decimal("0"), 35)
    assert rows[0].todo == [] and rows[0].formula == "Importe en riesgo 50 + Segmento 5 = 55"


def test_a_promise_due_today_ranks_above_a_quiet_medium_balance(gerente, gestora):
    medium = make_client(by=gerente, collector=gestora, legal_name="Saldo Mediano")
    make_invoice(by=gerente, client=medium, amount="25000.00", due_date=_days_ago(45))
    promised = make_client(by=gerente, collector=gestora, legal_name="Promete Hoy")
    invoice = make_invoice(by=gerente, client=promised, amount="8000.00", due_date=_days_ago(45))
    _commitment(promised, total="8000.00", dates=((TODAY, None),)).invoices.add(invoice)
    clients, rows = _queue(gestora)
    assert [c.legal_name for c in clients] == ["Promete Hoy", "Saldo Mediano"]
    # Promised today → 40 (its invoice is in the promise: not at risk); regular +5 = 45.
    # 25,000 × 15 % (31–60 days) = 3,750 → 35; regular +5 = 40.
    assert [c.score for c in clients] == [45, 40]
    assert [r.text for r in rows[0].todo] == ["Promesa de $8,000.00 vence hoy"]


def test_clients_owing_nothing_appear_only_with_something_due(gerente, gestora):
    paid_up = make_client(by=gerente, collector=gestora, legal_name="Al Corriente")
    make_invoice(by=gerente, client=paid_up, amount="5000.00", due_date=TODAY + dt.timedelta(days=10))
    assert _queue(gestora)[0] == []
    _task(paid_up, TaskKind.REVIEW)
    (client,), (row,) = _queue(gestora)
    assert client == paid_up and client.risk_points == 0 and len(row.todo) == 1


def test_a_quiet_balance_waits_for_tomorrow_once_attended_today(gerente, gestora):
    quiet = make_client(by=gerente, collector=gestora, legal_name="Saldo Quieto")
    make_invoice(by=gerente, client=quiet, amount="40000.00", due_date=_days_ago(70))
    assert [c.legal_name for c in _queue(gestora)[0]] == ["Saldo Quieto"]
    # A system entry (a reminder sent) is not attending the client.
    ledger.interaction_log(by=None, client=quiet, kind="system", direction="internal", summary="Recordatorio")
    assert [c.legal_name for c in _queue(gestora)[0]] == ["Saldo Quieto"]
    ledger.interaction_log(by=gestora, client=quiet, kind="call", outcome="no_answer", summary="No contesta")
    assert _queue(gestora)[0] == []
    assert [c.legal_name for c in _queue(gestora, today=TODAY + dt.timedelta(days=1))[0]] == ["Saldo Quieto"]


def test_debtors_who_may_be_called_now_come_first_and_each_row_says_when(client, gerente, gestora):
    """Monday 7 December 2026, 14:00 UTC: 08:00 in Mexico City (calls 07:00–22:00), 04:00 in
    Honolulu (US rules: 08:00–21:00), 15:00 in Madrid (09:00–21:00 on weekdays)."""
    import time_machine

    monday = dt.datetime(2026, 12, 7, 14, 0, tzinfo=dt.UTC)
    with time_machine.travel(monday, tick=False):
        day = monday.date()
        far = make_client(
            by=gerente, collector=gestora, legal_name="Hawaii Grande", country="US", time_zone="Pacific/Honolulu"
        )
        make_invoice(by=gerente, client=far, amount="500000.00", due_date=day - dt.timedelta(days=100))
        near = make_client(by=gerente, collector=gestora, legal_name="México Chico")
        make_invoice(by=gerente, client=near, amount="2000.00", due_date=day - dt.timedelta(days=10))
        spain = make_client(
            by=gerente, collector=gestora, legal_name="Madrid Mediano", country="ES", time_zone="Europe/Madrid"
        )
        make_invoice(by=gerente, client=spain, amount="30000.00", due_date=day - dt.timedelta(days=40))
        clients, rows = _queue(gestora, today=day)
        # Callable now first (by score among them), then the rest: Honolulu's far larger
        # balance waits until it is morning there.
        assert [c.legal_name for c in clients] == ["Madrid Mediano", "México Chico", "Hawaii Grande"]
        assert [c.callable_now for c in clients] == [True, True, False]
        assert clients[2].score > clients[0].score > clients[1].score
        assert rows[1].call_text == "Allí son las 08:00 · se puede llamar hasta las 22:00"
        assert rows[0].call_text == "Allí son las 15:00 · se puede llamar hasta las 21:00"
        assert rows[2].call_text == (
            "Allí son las 04:00 · no llamar ahora (Fuera del horario permitido (08:00–21:00, Pacific/Honolulu)); "
            "se puede desde hoy a las 08:00"
        )
        client.force_login(gestora)
        html = client.get(_url("worklist")).content.decode()
        assert html.index("Madrid Mediano") < html.index("México Chico") < html.index("Hawaii Grande")
        assert 'data-testid="call-window"' in html and "se puede desde hoy a las 08:00" in html


# --- the reasons --------------------------------------------------------------------------------


def test_each_row_explains_itself_with_numbers(portfolio, gestora):
    _clients, rows = _queue(gestora)
    c, a, e, d, b = rows
    assert [r.text for r in a.todo] == ["Llamada del paso 4 de la escalera"]
    assert a.todo[0].detail.startswith("Llamada de seguimiento: acordar fecha de pago")
    assert [r.text for r in a.why] == [
        "$1,600.00 en riesgo de perderse por la antigüedad del saldo vencido",
        "2 facturas vencidas, la más antigua con 47 días",
        "1 promesa incumplida en los últimos 90 días",
        "Perfil: Negligente",
        "Segmento Regular (peso de prioridad 2)",
    ]
    # Nothing to do today: the row says why it is there at all.
    assert e.todo == []
    assert [r.text for r in e.why][:2] == [
        "$67,500.00 en riesgo de perderse por la antigüedad del saldo vencido",
        "1 factura vencida con 200 días",
    ]
    assert [r.text for r in c.todo] == [
        "Conseguir un contacto · pendiente desde hace 2 días",
        "Promesa de $5,000.00 vence hoy",
        f"Seguimiento acordado para el {_days_ago(7).strftime('%d/%m/%Y')} (hace 7 días)",
    ]
    assert c.todo[0].late and not c.todo[1].late and c.todo[2].late
    assert c.todo[2].detail == "Quedó en enviar el comprobante"
    assert "4 promesas incumplidas en los últimos 90 días" in [r.text for r in c.why]
    assert "1 factura vencida con 130 días" in [r.text for r in c.why]
    assert [r.text for r in b.todo] == ["Seguimiento acordado para hoy"]
    assert "Perfil: Buen pagador" in [r.text for r in b.why]
    assert [r.text for r in d.todo] == ["Cuota 2 del plan de pagos ($1,000.00) venció ayer: verificar el pago"]
    assert [r.text for r in d.why] == ["Segmento Regular (peso de prioridad 2)"]


def test_the_page_shows_rows_reasons_totals_and_links(client, portfolio, gestora):
    client.force_login(gestora)
    response = client.get(_url("worklist"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Mi cartera hoy" in html
    assert html.index("Cementos del Centro") < html.index("Aceros Atlas") < html.index("Eléctrica Este")
    assert html.index("Eléctrica Este") < html.index("Distribuidora Delta") < html.index("Botica Bella")
    assert "Llamada del paso 4 de la escalera" in html
    assert "2 facturas vencidas, la más antigua con 47 días" in html
    assert "$12,000.00" in html and "$19,000.00" in html  # overdue and open balance of Aceros
    assert f'href="{reverse("cobranza:log_outcome", args=[portfolio["a"].pk])}"' in html
    assert _url("task_done", CollectorTask.objects.get(client=portfolio["a"]).pk) in html
    for name in ("Ferretería Fénix", "Granja Gris", "Hielos Huerta", "Imprenta Iris"):
        assert name not in html
    assert "0 de 2 pendientes atendidos hoy" in html  # the ladder call and the late find-contact task


def test_a_ladder_call_from_the_planner_appears_in_the_queue(gerente, gestora):
    """The real path: the planner records the call step, dispatch turns it into a task."""
    from cobranza.engine import dispatch
    from cobranza.engine.planner import plan

    debtor = make_client(by=gerente, collector=gestora, legal_name="Llantera La Rueda")
    make_invoice(by=gerente, client=debtor, number="LR-1", amount="4000.00", due_date=_days_ago(15))
    now = timezone.now()
    plan(today=TODAY, now=now)
    for notice in Notice.objects.filter(client=debtor, channel="call"):
        dispatch.dispatch(notice.pk, now=now + dt.timedelta(seconds=1))
    task = CollectorTask.objects.get(client=debtor, kind=TaskKind.CALL)
    assert task.assigned_to == gestora
    _clients, (row,) = _queue(gestora)
    assert row.client == debtor
    assert row.todo[0].text == f"Llamada del paso {task.notice.step.position} de la escalera"
    assert row.todo[0].task == task


# --- next actions -------------------------------------------------------------------------------


def test_a_next_action_is_done_once_a_later_staff_interaction_exists(gerente, gestora):
    debtor = make_client(by=gerente, collector=gestora)
    _next_action(debtor, gestora, on=YESTERDAY)
    assert [c.pk for c in _queue(gestora)[0]] == [debtor.pk]
    # A system event afterwards (a reminder sent, a reassignment) is not a follow-up.
    ledger.interaction_log(by=None, client=debtor, kind="system", direction="internal", summary="Recordatorio enviado")
    assert [c.pk for c in _queue(gestora)[0]] == [debtor.pk]
    # The collector calls again: done.
    ledger.interaction_log(by=gestora, client=debtor, kind="call", outcome="no_answer", summary="No contesta")
    assert _queue(gestora)[0] == []


def test_a_later_interaction_with_its_own_next_action_replaces_the_first(gerente, gestora):
    debtor = make_client(by=gerente, collector=gestora)
    _next_action(debtor, gestora, on=YESTERDAY, summary="Primera")
    _next_action(debtor, gestora, on=TODAY + dt.timedelta(days=3), summary="Segunda")
    assert _queue(gestora)[0] == []  # the first is followed up, the second is not due yet
    assert _queue(gestora, today=TODAY + dt.timedelta(days=3))[1][0].todo[0].detail == "Segunda"


def test_promised_dates_show_today_and_yesterday_only_while_pending(gerente, gestora):
    debtor = make_client(by=gerente, collector=gestora)
    _commitment(debtor, dates=((TODAY - dt.timedelta(days=2), "100.00"),))
    assert _queue(gestora)[0] == []  # judged by now: the broken-promise task takes over
    _commitment(debtor, dates=((TODAY + dt.timedelta(days=1), "100.00"),))
    assert _queue(gestora)[0] == []
    cancelled = _commitment(debtor, status="cancelled", resolved_on=TODAY, dates=((TODAY, "100.00"),))
    assert _queue(gestora)[0] == []
    Commitment.objects.filter(pk=cancelled.pk).update(status="open", resolved_on=None)
    assert [r.text for r in _queue(gestora)[1][0].todo] == ["Promesa de $100.00 vence hoy"]


# --- unread replies -------------------------------------------------------------------------------


def _reply(debtor, n=1, *, channel="email", subject="Re: Su saldo", body="Ya pagamos, les mando el comprobante."):
    message, created = replies.inbound_record(
        channel=channel,
        provider_id=f"<{debtor.pk}-{n}-{channel}@clientes.example>",
        sender="rosa@clientes.example" if channel == "email" else "+525511112222",
        subject=subject if channel == "email" else "",
        body=body,
        token_client_id=debtor.pk,
    )
    assert created
    return message


def test_an_unread_reply_puts_the_client_on_the_worklist_with_its_points(gerente, gestora):
    # Nothing owed and nothing due: only the reply brings the client to the queue.
    writer = make_client(by=gerente, collector=gestora, legal_name="Escribió")
    first = _reply(writer, 1)
    _reply(writer, 2, channel="sms", body="¿Me pueden llamar?")
    clients, rows = _queue(gestora)
    assert [c.legal_name for c in clients] == ["Escribió"]
    (c,), (row,) = clients, rows
    # Two unread replies weigh once (docs/domain.md#replies).
    assert (c.reply_count, c.reply_points) == (2, wl.REPLY_POINTS)
    assert c.score == wl.REPLY_POINTS + c.profile_points + c.segment_points
    assert [r.text for r in row.todo] == [
        "Respuesta del cliente por Correo electrónico, sin leer",
        "Respuesta del cliente por SMS, sin leer",
    ]
    assert [r.detail for r in row.todo] == ["Re: Su saldo", "¿Me pueden llamar?"]
    assert row.todo[0].reply == first and row.formula.startswith(f"Respuestas {wl.REPLY_POINTS} ")


def test_a_reply_read_or_answered_leaves_the_worklist(client, gerente, gestora):
    read = make_client(by=gerente, collector=gestora, legal_name="La Leo")
    answered = make_client(by=gerente, collector=gestora, legal_name="La Contesto")
    message = _reply(read)
    _reply(answered)
    client.force_login(gestora)
    page = client.get(_url("worklist"))
    html = page.content.decode()
    assert [r.client.legal_name for r in page.context["rows"]] == ["La Contesto", "La Leo"]
    assert f'href="{reverse("client_detail", args=[read.pk])}#respuestas"' in html
    assert _url("reply_mark_read", message.pk) in html
    # Marked read from the row: back to the queue, without the client.
    response = client.post(_url("reply_mark_read", message.pk), {"next": _url("worklist")})
    assert response.status_code == 302 and response["Location"] == _url("worklist")
    # Answered: a conversation logged after the reply.
    ledger.interaction_log(by=gestora, client=answered, kind="call", outcome="reached", summary="Hablamos")
    assert _queue(gestora)[0] == []


def test_replies_are_the_collectors_work_not_the_managers_queue(gerente, gestora):
    writer = make_client(by=gerente, collector=gestora, legal_name="Escribió")
    _reply(writer)
    assert [c.legal_name for c in _queue(gerente, wl.Scope(wl.MANAGERS))[0]] == []
    assert [c.legal_name for c in _queue(gerente, wl.Scope())[0]] == ["Escribió"]
    assert [c.legal_name for c in _queue(gestora)[0]] == ["Escribió"]


def test_the_page_explains_the_reply_points_in_english(client, gerente, gestora, settings):
    writer = make_client(by=gerente, collector=gestora, legal_name="Escribió")
    _reply(writer)
    client.force_login(gestora)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    html = client.get(_url("worklist")).content.decode()
    assert "Reply from the client by Email, unread" in html and "Read and reply" in html
    assert f"Unread replies from the client: {wl.REPLY_POINTS} points." in html


# --- who sees what --------------------------------------------------------------------------------


def test_a_missed_instalment_row_shows_the_instalments_own_amount_date_and_lateness(gerente, gestora):
    # Before: "Cuota incumplida del plan de pagos de $273,910.80 · hace 1 día" for an
    # instalment of $68,477.70 that fell due 30 days earlier (the plan's total, the judging day).
    client = make_client(by=gerente, collector=gestora, legal_name="Plan Partido")
    make_invoice(by=gerente, client=client, amount="273910.80", due_date=_days_ago(60))
    plan = _commitment(
        client,
        kind="plan",
        total="273910.80",
        dates=(
            (_days_ago(30), "68477.70"),
            (TODAY + dt.timedelta(days=30), "68477.70"),
            (TODAY + dt.timedelta(days=60), "68477.70"),
            (TODAY + dt.timedelta(days=90), "68477.80"),
        ),
    )
    plan.installments.filter(number=1).update(status="missed", judged_on=YESTERDAY)
    _task(client, TaskKind.PLAN_MISSED, due_on=YESTERDAY, commitment=plan, title="Cuota 1 del plan incumplida")
    _clients, (row,) = _queue(gestora)
    (reason,) = [r for r in row.todo if r.task is not None]
    due = date_format(_days_ago(30), "SHORT_DATE_FORMAT")
    assert reason.text == (
        f"Cuota 1 del plan de pagos incumplida: $68,477.70, vencía el {due} · pendiente desde hace 30 días"
    )
    assert reason.late


def test_a_collector_never_sees_another_collectors_clients(client, portfolio, gestora, gestor):
    client.force_login(gestor)
    response = client.get(_url("worklist"), {"collector": gestora.pk})  # the choice is ignored
    html = response.content.decode()
    assert response.status_code == 200
    assert "Ferretería Fénix" in html
    for name in ("Aceros Atlas", "Botica Bella", "Cementos del Centro", "Distribuidora Delta"):
        assert name not in html
    assert 'name="collector"' not in html
    task = CollectorTask.objects.get(client=portfolio["a"])
    assert client.post(_url("task_done", task.pk)).status_code == 404
    assert CollectorTask.objects.get(pk=task.pk).status == TaskStatus.OPEN


def test_the_managers_tasks_are_not_in_the_collectors_queue(client, portfolio, gestora, gerente):
    managers_task = CollectorTask.objects.get(client=portfolio["e"], kind=TaskKind.ESCALATION)
    client.force_login(gestora)
    assert client.post(_url("task_done", managers_task.pk)).status_code == 404
    with pytest.raises(PermissionDenied):
        services_tasks.task_complete(by=gestora, task=managers_task)
    # The managers' queue has it, and only the managers' tasks.
    clients, rows = _queue(gerente, wl.Scope(wl.MANAGERS))
    assert [c.legal_name for c in clients] == ["Eléctrica Este"]
    assert [r.task for r in rows[0].todo] == [managers_task]


def test_a_task_left_to_a_former_collector_follows_the_client(gerente, gestora, gestor):
    debtor = make_client(by=gerente, collector=gestor)
    task = _task(debtor)
    ledger.clients_assign_collector(by=gerente, client_ids=[debtor.pk], collector=gestora)
    assert [c.pk for c in _queue(gestora)[0]] == [debtor.pk]
    assert _queue(gestor)[0] == []
    services_tasks.task_complete(by=gestora, task=CollectorTask.objects.select_related("client").get(pk=task.pk))
    with pytest.raises(PermissionDenied):  # the former collector no longer works the client
        services_tasks.task_complete(by=gestor, task=CollectorTask.objects.select_related("client").get(pk=task.pk))


def test_managers_choose_whose_queue(client, portfolio, gerente, gestora, gestor):
    client.force_login(gerente)
    everybody = client.get(_url("worklist")).content.decode()
    assert "Cartera de hoy" in everybody
    for name in ("Aceros Atlas", "Ferretería Fénix", "Eléctrica Este"):
        assert name in everybody
    hers = client.get(_url("worklist"), {"collector": gestora.pk}).content.decode()
    assert "Aceros Atlas" in hers and "Eléctrica Este" in hers and "Ferretería Fénix" not in hers
    his = client.get(_url("worklist"), {"collector": gestor.pk}).content.decode()
    assert "Ferretería Fénix" in his and "Aceros Atlas" not in his
    nobodys = make_client(by=gerente, collector=None, legal_name="Huérfana Sin Gestor")
    _next_action(nobodys, gerente)
    unassigned = client.get(_url("worklist"), {"collector": "none"}).content.decode()
    assert "Huérfana Sin Gestor" in unassigned and "Aceros Atlas" not in unassigned


def test_whose_queue_is_the_collector_parameter_as_on_the_dashboard_and_the_client_list(
    client, portfolio, gerente, gestora
):
    client.force_login(gerente)
    for url in (_url("worklist"), _url("calendar"), reverse("cobranza:dashboard"), reverse("client_list")):
        html = client.get(url, {"collector": gestora.pk}).content.decode()
        assert 'name="collector"' in html, url
        assert f'<option value="{gestora.pk}" selected>' in html, url
    # The worklist and the calendar keep the choice in the links between them.
    html = client.get(_url("worklist"), {"collector": "none"}).content.decode()
    assert f'href="{_url("calendar")}?collector=none"' in html


@pytest.mark.parametrize("value", ["xyz", "999999", "' OR 1=1 --", ""])
def test_a_bad_scope_is_a_field_error_not_a_crash(client, portfolio, gerente, value):
    client.force_login(gerente)
    response = client.get(_url("worklist"), {"collector": value, "page": "abc"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "Aceros Atlas" in html  # falls back to everybody's queue
    if value:
        assert 'data-testid="field-error"' in html


def test_the_manager_of_a_non_collector_is_not_a_choice(client, gerente, admin_user):
    client.force_login(gerente)
    response = client.get(_url("worklist"), {"collector": admin_user.pk})
    assert response.status_code == 200
    assert 'data-testid="field-error"' in response.content.decode()


# --- reassignment ---------------------------------------------------------------------------------


def test_a_manager_reassigns_one_client_from_the_queue(client, portfolio, gerente, gestor):
    client.force_login(gerente)
    a = portfolio["a"]
    response = client.post(
        _url("worklist_reassign"),
        {"clients": [a.pk], "collector": gestor.pk, "next": _url("worklist") + "?collector=todos"},
    )
    assert response.status_code == 302 and response.url == _url("worklist") + "?collector=todos"
    a.refresh_from_db()
    assert a.collector == gestor
    assert "1 cliente reasignado a Mario Gestor." in _messages(response)
    assert Interaction.objects.filter(client=a, summary="Cartera reasignada a Mario Gestor").exists()
    assert "Aceros Atlas" in client.get(_url("worklist"), {"collector": gestor.pk}).content.decode()


def test_a_manager_reassigns_in_bulk_and_to_nobody(client, portfolio, gerente, gestor):
    client.force_login(gerente)
    ids = [portfolio["a"].pk, portfolio["b"].pk, portfolio["f"].pk]
    response = client.post(_url("worklist_reassign"), {"clients": ids, "collector": "none"})
    assert response.status_code == 302
    assert "3 clientes reasignados a sin asignar." in _messages(response)
    assert set(type(portfolio["a"]).objects.filter(pk__in=ids).values_list("collector", flat=True)) == {None}


@pytest.mark.parametrize(
    "data",
    [{}, {"clients": ["abc"], "collector": "none"}, {"clients": [999999], "collector": "none"}, {"collector": "none"}],
)
def test_bad_reassignments_are_messages_not_crashes(client, portfolio, gerente, data):
    client.force_login(gerente)
    response = client.post(_url("worklist_reassign"), data)
    assert response.status_code == 302
    assert _messages(response)


def test_a_reassignment_to_someone_who_is_not_a_collector_is_refused(client, portfolio, gerente, admin_user):
    client.force_login(gerente)
    response = client.post(_url("worklist_reassign"), {"clients": [portfolio["a"].pk], "collector": admin_user.pk})
    assert response.status_code == 302
    portfolio["a"].refresh_from_db()
    assert portfolio["a"].collector.username == "gestora"


def test_collectors_cannot_reassign(client, portfolio, gestora, gestor):
    client.force_login(gestora)
    response = client.post(_url("worklist_reassign"), {"clients": [portfolio["a"].pk], "collector": gestor.pk})
    assert response.status_code == 403


# --- tasks done -----------------------------------------------------------------------------------


def test_task_complete_marks_it_done_and_logs_the_note(portfolio, gestora):
    task = CollectorTask.objects.get(client=portfolio["a"])
    services_tasks.task_complete(by=gestora, task=task, note="  Habló con Rosa: paga el viernes  ")
    task.refresh_from_db()
    assert task.status == TaskStatus.DONE and task.completed_by == gestora
    assert timezone.localdate(task.completed_at) == TODAY
    entry = Interaction.objects.filter(client=portfolio["a"]).first()
    assert (entry.kind, entry.direction, entry.author) == ("system", "internal", gestora)
    assert entry.summary == f"Tarea hecha: {task.title}" and entry.body == "Habló con Rosa: paga el viernes"


def test_task_complete_without_a_note_writes_no_timeline_entry(portfolio, gestora):
    task = CollectorTask.objects.get(client=portfolio["a"])
    before = Interaction.objects.filter(client=portfolio["a"]).count()
    services_tasks.task_complete(by=gestora, task=task)
    assert Interaction.objects.filter(client=portfolio["a"]).count() == before


def test_a_task_is_completed_once(portfolio, gestora, gerente):
    task = CollectorTask.objects.get(client=portfolio["a"])
    stale = CollectorTask.objects.get(pk=task.pk)
    services_tasks.task_complete(by=gestora, task=task)
    with pytest.raises(ValidationError) as exc:
        services_tasks.task_complete(by=gerente, task=stale, note="tarde")
    assert "ya no está pendiente" in str(exc.value)
    assert CollectorTask.objects.get(pk=task.pk).completed_by == gestora
    assert not Interaction.objects.filter(body="tarde").exists()


def test_another_collector_cannot_complete_the_task(portfolio, gestor):
    with pytest.raises(PermissionDenied):
        services_tasks.task_complete(by=gestor, task=CollectorTask.objects.get(client=portfolio["a"]))


def test_marking_a_task_done_from_the_page_updates_the_counter(client, portfolio, gestora):
    client.force_login(gestora)
    task = CollectorTask.objects.get(client=portfolio["a"])
    response = client.post(_url("task_done", task.pk), {"note": "Promete pagar el viernes", "next": _url("worklist")})
    assert response.status_code == 302 and response.url == _url("worklist")
    assert f"Tarea hecha: {task.title} (Aceros Atlas)." in _messages(response)
    html = client.get(_url("worklist")).content.decode()
    assert "1 de 2 pendientes atendidos hoy" in html
    assert "Llamada del paso 4 de la escalera" not in html
    # Twice: a message, not an error page.
    again = client.post(_url("task_done", task.pk))
    assert again.status_code == 302
    assert "Esta tarea ya no está pendiente." in _messages(again)


def test_a_too_long_note_is_refused_with_a_message(client, portfolio, gestora):
    client.force_login(gestora)
    task = CollectorTask.objects.get(client=portfolio["a"])
    response = client.post(_url("task_done", task.pk), {"note": "x" * 2001, "next": "https://evil.example/"})
    assert response.status_code == 302 and response.url == _url("worklist")  # no open redirect
    assert _messages(response)
    assert CollectorTask.objects.get(pk=task.pk).status == TaskStatus.OPEN


def test_managers_complete_any_task(client, portfolio, gerente):
    client.force_login(gerente)
    for task in CollectorTask.objects.filter(status=TaskStatus.OPEN, due_on__lte=TODAY):
        assert client.post(_url("task_done", task.pk)).status_code == 302
    assert not CollectorTask.objects.filter(status=TaskStatus.OPEN, due_on__lte=TODAY).exists()
    assert "4 de 4 pendientes atendidos hoy" in client.get(_url("worklist")).content.decode()


def test_the_counter_counts_todays_work_only(gerente, gestora):
    debtor = make_client(by=gerente, collector=gestora)
    done_yesterday = _task(debtor, due_on=YESTERDAY)
    CollectorTask.objects.filter(pk=done_yesterday.pk).update(
        status=TaskStatus.DONE, completed_at=timezone.now() - dt.timedelta(days=1)
    )
    _task(debtor, due_on=TODAY + dt.timedelta(days=2))  # not due
    _task(debtor, due_on=TODAY, status=TaskStatus.CANCELLED)
    due = _task(debtor, due_on=_days_ago(3))
    scope = wl.Scope.of_collector(gestora)
    assert wl.day_progress(user=gestora, scope=scope) == wl.Progress(done=0, pending=1)
    services_tasks.task_complete(by=gestora, task=due)
    progress = wl.day_progress(user=gestora, scope=scope)
    assert (progress.done, progress.total, progress.percent) == (1, 1, 100)


# --- the calendar ---------------------------------------------------------------------------------


@pytest.fixture
def week(gerente, gestora, gestor):
    """Entries on each kind of date in this week (Monday to Sunday)."""
    monday = wl.week_start(TODAY)
    sunday = monday + dt.timedelta(days=6)
    mine = make_client(by=gerente, collector=gestora, legal_name="Papelería Pluma")
    theirs = make_client(by=gerente, collector=gestor, legal_name="Quesería Queso")
    call = _task(mine, due_on=monday, title="Llamar a Pluma")
    done = _task(mine, TaskKind.FOLLOW_UP, due_on=sunday, title="Seguimiento hecho")
    CollectorTask.objects.filter(pk=done.pk).update(status=TaskStatus.DONE, completed_at=timezone.now())
    _task(mine, due_on=sunday, status=TaskStatus.CANCELLED, title="Cancelada")
    _commitment(mine, total="2500.00", dates=((sunday, None),))
    _next_action(mine, gestora, on=sunday, summary="Confirmar transferencia")
    _task(theirs, due_on=monday, title="Llamar a Queso")
    _task(mine, due_on=monday - dt.timedelta(days=14), title="Muy atrasada")
    return {"monday": monday, "sunday": sunday, "mine": mine, "theirs": theirs, "call": call}


def _entries(cal, day):
    return [(e.kind, e.text, e.done) for e in next(d for d in cal.days if d.day == day).entries]


def _entry(cal, day, detail):
    return next(e for d in cal.days if d.day == day for e in d.entries if e.detail == detail)


def test_the_calendar_shows_tasks_promises_and_next_actions_by_day(week, gestora):
    cal = wl.calendar_week(user=gestora, scope=wl.Scope.of_collector(gestora), day=TODAY)
    assert cal.start == week["monday"] and cal.end == week["sunday"] and len(cal.days) == 7
    assert _entries(cal, week["monday"]) == [("task", "Llamada pendiente", False)]
    sunday = _entries(cal, week["sunday"])
    assert ("promise", "Promesa de $2,500.00", False) in sunday or (
        "promise",
        "Promesa de $2,500.00 vence hoy",
        False,
    ) in sunday
    follow_up = _entry(cal, week["sunday"], "Confirmar transferencia")
    assert (follow_up.kind, follow_up.text, follow_up.done) == ("next_action", "Seguimiento acordado", False)
    assert _entry(cal, week["sunday"], "Seguimiento hecho").done  # a task done, shown struck through
    assert all(text != "Cancelada" for _k, text, _d in sunday)
    assert cal.total == 4
    assert cal.late_tasks == 1
    # The month overview counts the same entries per day.
    cells = {cell.day: cell.count for week_row in cal.month_weeks for cell in week_row}
    assert (cells[week["monday"]], cells[week["sunday"]]) == (1, 3)
    assert cal.month.month == (week["monday"] + dt.timedelta(days=3)).month


def test_the_calendar_marks_a_next_action_done_after_a_later_contact(week, gestora):
    ledger.interaction_log(by=gestora, client=week["mine"], kind="whatsapp", summary="Envió el comprobante")
    cal = wl.calendar_week(user=gestora, scope=wl.Scope.of_collector(gestora), day=TODAY)
    assert _entry(cal, week["sunday"], "Confirmar transferencia").done


def test_the_calendar_page_for_collectors_and_managers(client, week, gestora, gestor, gerente):
    client.force_login(gestora)
    html = client.get(_url("calendar")).content.decode()
    assert "Papelería Pluma" in html and "Quesería Queso" not in html
    assert "Confirmar transferencia" in html and "1 tarea atrasada de días anteriores." in html
    # A collector asking for someone else's calendar still gets their own.
    assert "Quesería Queso" not in client.get(_url("calendar"), {"collector": gestor.pk}).content.decode()

    client.force_login(gerente)
    everybody = client.get(_url("calendar")).content.decode()
    assert "Papelería Pluma" in everybody and "Quesería Queso" in everybody
    his = client.get(_url("calendar"), {"collector": gestor.pk}).content.decode()
    assert "Quesería Queso" in his and "Papelería Pluma" not in his


def test_the_calendar_moves_by_weeks(client, week, gestora):
    client.force_login(gestora)
    next_week = week["monday"] + dt.timedelta(days=7)
    response = client.get(_url("calendar"), {"semana": (next_week + dt.timedelta(days=2)).isoformat()})
    assert response.status_code == 200
    assert response.context["cal"].start == next_week
    assert (
        "Papelería Pluma"
        not in response.content.decode().split('data-testid="week"')[1].split('data-testid="month"')[0]
    )
    html = response.content.decode()
    assert f"semana={week['monday'].isoformat()}" in html  # the previous-week link


@pytest.mark.parametrize("value", ["ayer", "2026-13-45", "0001-01-01", "9999-12-31"])
def test_a_bad_week_is_a_field_error_not_a_crash(client, week, gestora, value):
    client.force_login(gestora)
    response = client.get(_url("calendar"), {"semana": value})
    assert response.status_code == 200
    assert response.context["cal"].start == week["monday"]
    assert 'data-testid="field-error"' in response.content.decode()


def test_pages_need_a_staff_role(client, nobody):
    client.force_login(nobody)
    assert client.get(_url("worklist")).status_code == 403
    assert client.get(_url("calendar")).status_code == 403


def test_posts_refuse_get(client, gerente):
    client.force_login(gerente)
    assert client.get(_url("worklist_reassign")).status_code == 405
    assert client.get(_url("task_done", 1)).status_code == 405


# --- query counts ---------------------------------------------------------------------------------


def _busy_clients(n, *, by, collectors, tag):
    """Clients with every kind of item due and history behind them."""
    for i in range(n):
        debtor = make_client(by=by, collector=collectors[i % len(collectors)], legal_name=f"{tag} {i:03d}")
        make_invoice(by=by, client=debtor, amount=f"{1000 + 500 * i}.00", due_date=_days_ago(10 + i))
        make_invoice(by=by, client=debtor, amount="50.00", currency="USD", due_date=_days_ago(3))
        _profile(debtor, ("negligent", "chronic", "good", "casual")[i % 4])
        _broken(debtor, days_ago=5 + i)
        _ladder_call(debtor)
        _task(debtor, TaskKind.FIND_CONTACT, due_on=_days_ago(1))
        _commitment(debtor, total="100.00", dates=((TODAY, None),))
        _next_action(debtor, debtor.collector or by)
        _task(debtor, due_on=wl.week_start(TODAY) + dt.timedelta(days=i % 7))


def _count(client, url, **params) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, params)
    assert response.status_code == 200
    return len(ctx.captured_queries)


WORKLIST_MAX = 17  # session, user, roles (3) + [collectors] + count, page, tasks, installments,
# next actions, unread replies, totals, progress, promise-kept rates + their collectors' names + the call windows
# (the scope's countries and time zones, their rules and holidays: 3)
CALENDAR_MAX = 12  # session, user, roles (3) + [collectors] + week (3) + month (3) + late tasks


@pytest.mark.parametrize("role", ["gerente", "gestora"])
def test_worklist_query_count_does_not_grow_with_rows(client, request, gerente, gestora, gestor, role):
    client.force_login(request.getfixturevalue(role))
    _busy_clients(2, by=gerente, collectors=[gestora, gestor], tag="Pocos")
    few = _count(client, _url("worklist"))
    _busy_clients(24, by=gerente, collectors=[gestora, gestor], tag="Muchos")
    many = _count(client, _url("worklist"))
    assert many == few <= WORKLIST_MAX
    assert len(client.get(_url("worklist")).context["rows"]) == (wl.WORKLIST_PER_PAGE if role == "gerente" else 13)
    if role == "gerente":
        assert _count(client, _url("worklist"), collector=gestora.pk, page=2) <= WORKLIST_MAX


def test_worklist_selector_is_a_fixed_number_of_queries_for_one_or_many_clients(gerente, gestora):
    scope = wl.Scope.of_collector(gestora)
    _busy_clients(1, by=gerente, collectors=[gestora], tag="Uno")
    with CaptureQueriesContext(connection) as one:
        assert len(list(wl.worklist(user=gestora, scope=scope))) == 1
    _busy_clients(20, by=gerente, collectors=[gestora], tag="Veinte")
    with CaptureQueriesContext(connection) as many:
        clients = list(wl.worklist(user=gestora, scope=scope))
    # The rows (1) and the call windows of the scope's countries and time zones (3).
    assert len(clients) == 21 and len(one) == len(many) == 4
    with CaptureQueriesContext(connection) as rows:
        wl.worklist_rows(clients, user=gestora, scope=scope)
    assert len(rows) == 5


@pytest.mark.parametrize("role", ["gerente", "gestora"])
def test_calendar_query_count_does_not_grow(client, request, gerente, gestora, gestor, role):
    client.force_login(request.getfixturevalue(role))
    _busy_clients(2, by=gerente, collectors=[gestora, gestor], tag="Pocos")
    few = _count(client, _url("calendar"))
    _busy_clients(20, by=gerente, collectors=[gestora, gestor], tag="Muchos")
    many = _count(client, _url("calendar"))
    assert many == few <= CALENDAR_MAX


def test_promise_kept_rate_per_collector_counts_judged_promises_of_the_last_90_days(client, gerente, gestora, gestor):
    def promise(collector, status, days_ago):
        debtor = make_client(by=gerente, collector=collector)
        invoice = make_invoice(by=gerente, client=debtor, amount="100.00", due_date=_days_ago(40))
        Commitment.objects.create(
            client=debtor,
            kind="promise",
            status=status,
            currency="MXN",
            total=Decimal("100.00"),
            made_on=_days_ago(days_ago + 7),
            resolved_on=_days_ago(days_ago),
        ).invoices.set([invoice])

    promise(gestora, "kept", 5)
    promise(gestora, "kept", 30)
    promise(gestora, "partial", 10)
    promise(gestora, "broken", 100)  # too old: not counted
    promise(gestor, "broken", 3)
    rates = {r.collector: (r.kept, r.judged, r.percent) for r in wl.promise_kept_rates(scope=wl.Scope())}
    assert rates == {gestora: (2, 3, 67), gestor: (0, 1, 0)}
    mine = wl.promise_kept_rates(scope=wl.Scope.of_collector(gestora))
    assert [(r.kept, r.judged) for r in mine] == [(2, 3)]
    client.force_login(gestora)
    html = client.get(_url("worklist")).content.decode()
    assert "Promesas cumplidas (últimos 90 días)" in html and "2 de 3" in html and "67 %" in html
