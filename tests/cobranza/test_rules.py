"""Each collections rule of ``cobranza.rules`` gives the same answer in SQL, in the ORM and
in Python, on one fixture of edge cases."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection

from accounts.models import Client, Invoice, Segment
from cobranza import rules
from cobranza.models import ClientDunning, ClientProfile, Commitment, InvoiceHold, Policy, Profile
from tests.factories import make_client

pytestmark = pytest.mark.django_db
TODAY = dt.date(2026, 5, 15)
DAY = dt.timedelta(days=1)


def _rows(sql: str, params=None) -> dict:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or {})
        return dict(cursor.fetchall())


def _true(values: dict) -> set:
    return {pk for pk, v in values.items() if v}


# --- profiles and policies -------------------------------------------------------------------------


@pytest.fixture(name="book")
def book_fixture(gerente):
    s_active = Segment.objects.create(code="r-activo", name="R activo")
    s_inactive = Segment.objects.create(code="r-inactivo", name="R inactivo")
    s_none = Segment.objects.create(code="r-sin", name="R sin política")
    seg_active = Policy.objects.create(name="R seg activo", segment=s_active)
    seg_inactive = Policy.objects.create(name="R seg inactivo", segment=s_inactive, is_active=False)
    own = Policy.objects.create(name="R propia")
    own_inactive = Policy.objects.create(name="R propia inactiva", is_active=False)
    Policy.objects.create(name="R negligente", profile=Profile.NEGLIGENT)
    Policy.objects.create(name="R crónico inactiva", profile=Profile.CHRONIC, is_active=False)
    Policy.objects.create(name="R nuevo", profile=Profile.NEW)

    def client(name, seg, *, computed=None, override="", own_policy=None, status="active", paused=None):
        c = make_client(by=gerente, legal_name=name, segment_code=seg.code)
        Client.objects.filter(pk=c.pk).update(status=status)
        if computed is not None:
            ClientProfile.objects.create(
                client=c, computed=computed, override=override, override_reason="x" if override else ""
            )
        if own_policy is not None or paused is not None:
            ClientDunning.objects.create(
                client=c, policy=own_policy, paused_until=paused, pause_reason="pausa" if paused else ""
            )
        return c

    return {
        # no profile row: "new", so the "new" profile's policy
        "no_row": client("Sin fila", s_active),
        "new_row": client("Fila nueva", s_active, computed=Profile.NEW),
        "computed": client("Calculado", s_active, computed=Profile.NEGLIGENT),
        # the override wins; its policy is inactive, so the segment's
        "override": client("Asignado", s_active, computed=Profile.NEGLIGENT, override=Profile.CHRONIC),
        "override_good": client("Bueno", s_none, computed=Profile.CHRONIC, override=Profile.GOOD),
        "own": client("Propia", s_active, computed=Profile.NEGLIGENT, own_policy=own),
        "own_inactive": client("Propia inactiva", s_active, computed=Profile.NEGLIGENT, own_policy=own_inactive),
        "seg_inactive": client("Seg inactivo", s_inactive, computed=Profile.CASUAL),
        "nothing": client("Nada", s_none, computed=Profile.INTENTIONAL),
        # clients the ladder acts on, or not
        "paused_past": client("Pausa pasada", s_active, computed=Profile.CASUAL, paused=TODAY - DAY),
        "paused_today": client("Pausa hoy", s_active, computed=Profile.CASUAL, paused=TODAY),
        "paused_future": client("Pausa futura", s_active, computed=Profile.CASUAL, paused=TODAY + 9 * DAY),
        "in_collection": client("En cobranza", s_active, computed=Profile.CASUAL, status="in_collection"),
        "agency": client("Agencia", s_active, computed=Profile.CASUAL, status="agency"),
        "legal": client("Legal", s_active, computed=Profile.CASUAL, status="legal"),
        "written_off": client("Castigado", s_active, computed=Profile.CASUAL, status="written_off"),
        "policies": {"seg_active": seg_active, "seg_inactive": seg_inactive, "own": own, "own_inactive": own_inactive},
    }


def _clients(book) -> list[Client]:
    ids = [c.pk for c in book.values() if isinstance(c, Client)]
    return list(Client.objects.filter(pk__in=ids).select_related("profile", "dunning__policy"))


def test_effective_profile_is_one_rule(book):
    clients = _clients(book)
    ids = [c.pk for c in clients]
    in_sql = _rows(
        f"SELECT c.id, {rules.effective_profile_sql('cp')} FROM accounts_client c "
        "LEFT JOIN cobranza_clientprofile cp ON cp.client_id = c.id WHERE c.id = ANY(%(ids)s)",
        {"ids": ids},
    )
    in_orm = dict(Client.objects.filter(pk__in=ids).annotate(p=rules.effective_profile_expr()).values_list("pk", "p"))
    in_python = {c.pk: rules.client_effective_profile(c) for c in clients}
    assert in_sql == in_orm == in_python
    by_filter = {}
    for value in Profile.values:
        for pk in Client.objects.filter(rules.effective_profile_q(value), pk__in=ids).values_list("pk", flat=True):
            by_filter[pk] = value
    assert by_filter == in_python
    # The profile table's own columns (the good-payer UPDATE) and the model property.
    on_rows = _rows(f"SELECT client_id, {rules.effective_profile_sql(None)} = 'good' FROM cobranza_clientprofile")
    assert _true(on_rows) == {book["override_good"].pk}
    assert {r.client_id: r.effective for r in ClientProfile.objects.filter(client_id__in=ids)} == {
        pk: v for pk, v in in_python.items() if pk != book["no_row"].pk
    }
    assert in_python[book["no_row"].pk] == in_python[book["new_row"].pk] == Profile.NEW
    assert in_python[book["override"].pk] == Profile.CHRONIC


def test_effective_policy_is_one_rule(book):
    clients = _clients(book)
    ids = [c.pk for c in clients]
    in_sql = _rows(
        f"SELECT c.id, {rules.effective_policy_sql(dunning='cd')} FROM accounts_client c "
        f"{rules.effective_policy_joins_sql('c', dunning='cd', profile='cp')} WHERE c.id = ANY(%(ids)s)",
        {"ids": ids},
    )
    in_orm = dict(Client.objects.filter(pk__in=ids).annotate(p=rules.effective_policy_expr()).values_list("pk", "p"))
    policies = list(Policy.objects.all())

    def python(client):
        dunning = getattr(client, "dunning", None)
        chosen = rules.effective_policy(
            own=dunning.policy if dunning else None,
            profile_policy=rules.profile_policy(policies, rules.client_effective_profile(client)),
            segment_policy=next((p for p in policies if p.segment_id == client.segment_id), None),
        )
        return chosen.pk if chosen else None

    in_python = {c.pk: python(c) for c in clients}
    assert in_sql == in_orm == in_python
    names = dict(Policy.objects.values_list("pk", "name"))
    got = {key: names.get(in_python[book[key].pk]) for key in ("no_row", "new_row", "computed", "override")}
    assert got == {"no_row": "R nuevo", "new_row": "R nuevo", "computed": "R negligente", "override": "R seg activo"}
    assert in_python[book["own"].pk] == book["policies"]["own"].pk
    assert in_python[book["own_inactive"].pk] == book["policies"]["own_inactive"].pk
    assert in_python[book["seg_inactive"].pk] == book["policies"]["seg_inactive"].pk
    assert in_python[book["nothing"].pk] is None


def test_clients_the_ladder_acts_on_are_one_rule(book):
    clients = _clients(book)
    ids = [c.pk for c in clients]
    in_sql = _true(
        _rows(
            f"SELECT c.id, {rules.ladder_client_sql('c')} FROM accounts_client c "
            "LEFT JOIN cobranza_clientdunning cd ON cd.client_id = c.id WHERE c.id = ANY(%(ids)s)",
            {"ids": ids, "today": TODAY},
        )
    )
    in_orm = set(Client.objects.filter(rules.ladder_client_q(TODAY), pk__in=ids).values_list("pk", flat=True))
    in_python = {c.pk for c in clients if rules.is_ladder_client(c, TODAY)}
    assert in_sql == in_orm == in_python
    stopped = {k for k in ("paused_today", "paused_future", "agency", "legal", "written_off")}
    assert {k for k, c in book.items() if isinstance(c, Client) and c.pk not in in_python} == stopped


# --- invoices: hold, commitment, dunnable ----------------------------------------------------------


@pytest.fixture(name="invoices")
def invoices_fixture(gerente):
    client = make_client(by=gerente)
    n = 0

    def invoice(status="open", paid="0.00", hold=None, commitment=None):
        nonlocal n
        n += 1
        inv = Invoice.objects.create(
            number=f"D-{n}", client=client, issue_date=TODAY - 60 * DAY, due_date=TODAY - 30 * DAY,
            currency="MXN", amount=Decimal("100.00"), amount_paid=Decimal(paid), status=status,
        )  # fmt: skip
        if hold is not None:
            InvoiceHold.objects.create(invoice=inv, until=hold or None, reason="retenida")
        if commitment is not None:
            Commitment.objects.create(
                client=client, kind="promise", status=commitment, currency="MXN", total=Decimal("100"),
                made_on=TODAY - 5 * DAY, resolved_on=None if commitment == "open" else TODAY - DAY,
            ).invoices.add(inv)  # fmt: skip
        return inv

    return {
        "open": invoice(),
        "partial": invoice("partially_paid", paid="60.00"),
        "paid": invoice("paid", paid="100.00"),  # zero balance
        "cancelled": invoice("cancelled"),
        "written_off": invoice("written_off"),
        "disputed": invoice("disputed"),
        "held_no_date": invoice(hold=""),
        "held_until_yesterday": invoice(hold=TODAY - DAY),
        "held_until_today": invoice(hold=TODAY),
        "held_until_later": invoice(hold=TODAY + DAY),
        "open_commitment": invoice(commitment="open"),
        "kept_commitment": invoice(commitment="kept"),
        "broken_commitment": invoice("partially_paid", paid="10.00", commitment="broken"),
    }


def _invoice_forms(sql: str, q, python) -> tuple[set, set, set]:
    in_sql = _true(_rows(f"SELECT i.id, {sql} FROM accounts_invoice i", {"today": TODAY}))
    in_orm = set(Invoice.objects.filter(q).values_list("pk", flat=True))
    in_python = {
        inv.pk for inv in Invoice.objects.select_related("hold").prefetch_related("commitments") if python(inv)
    }
    return in_sql, in_orm, in_python


def _names(invoices, ids) -> set:
    return {k for k, inv in invoices.items() if inv.pk in ids}


def test_hold_is_one_rule(invoices):
    in_sql, in_orm, in_python = _invoice_forms(
        rules.hold_active_sql("i"),
        rules.hold_active_q(TODAY),
        lambda inv: rules.hold_is_active(getattr(inv, "hold", None), TODAY),
    )
    assert in_sql == in_orm == in_python
    assert _names(invoices, in_python) == {"held_no_date", "held_until_today", "held_until_later"}


def test_open_commitment_is_one_rule(invoices):
    in_sql, in_orm, in_python = _invoice_forms(
        rules.open_commitment_sql("i"), rules.open_commitment_q(), rules.in_open_commitment
    )
    assert in_sql == in_orm == in_python
    assert _names(invoices, in_python) == {"open_commitment"}


def test_dunnable_invoice_is_one_rule(invoices):
    in_sql, in_orm, in_python = _invoice_forms(
        rules.dunnable_invoice_sql("i"),
        rules.dunnable_invoice_q(TODAY),
        lambda inv: rules.is_dunnable_invoice(inv, TODAY),
    )
    assert in_sql == in_orm == in_python
    assert _names(invoices, in_python) == {
        "open", "partial", "held_until_yesterday", "kept_commitment", "broken_commitment"
    }  # fmt: skip


# --- promises ---------------------------------------------------------------------------------------


def test_promise_kept_and_judged_are_one_rule(gerente):
    client = make_client(by=gerente)
    for kind in ("promise", "extension", "plan"):
        for status in ("open", "kept", "partial", "broken", "cancelled"):
            Commitment.objects.create(
                client=client, kind=kind, status=status, currency="MXN", total=Decimal("10"),
                made_on=TODAY - 9 * DAY, resolved_on=None if status == "open" else TODAY,
            )  # fmt: skip
    rows = Commitment.objects.all()
    judged = _true(_rows(f"SELECT m.id, {rules.promise_judged_sql('m')} FROM cobranza_commitment m"))
    kept = _true(_rows(f"SELECT m.id, {rules.promise_kept_sql('m')} FROM cobranza_commitment m"))
    assert judged == set(rows.filter(rules.promise_judged_q()).values_list("pk", flat=True))
    assert judged == {c.pk for c in rows if rules.is_judged_promise(c)}
    assert kept == set(rows.filter(rules.promise_kept_q()).values_list("pk", flat=True))
    assert kept == {c.pk for c in rows if rules.is_kept_promise(c)}
    assert rows.aggregate(**rules.promise_kept_aggregates()) == {"kept": len(kept), "judged": len(judged)} == {
        "kept": 2, "judged": 6
    }  # fmt: skip


# --- step due ---------------------------------------------------------------------------------------


def test_step_due_is_one_rule():
    """On every due date around TODAY and every offset of a ladder, the SQL the planner runs
    and the Python the client page's "next step" uses agree."""
    cases = [(TODAY + k * DAY, offset) for k in range(-12, 13) for offset in (-5, -3, -1, 0, 1, 3, 7, 15)]
    values = ", ".join(f"(DATE '{due.isoformat()}', {offset})" for due, offset in cases)
    reached = rules.step_day_reached_sql("i", "s", "%(today)s")
    stale = rules.stale_pre_due_sql("i", "s", "%(today)s")
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT i.due_date, s.offset_days, {reached} AND NOT {stale} "  # noqa: S608 - test literals
            f"FROM (VALUES {values}) AS v(due_date, offset_days), LATERAL (SELECT v.due_date) i(due_date), "
            "LATERAL (SELECT v.offset_days) s(offset_days)",
            {"today": TODAY},
        )
        in_sql = {(due, offset): due_now for due, offset, due_now in cursor.fetchall()}
    in_python = {(due, offset): rules.step_due(due, offset, TODAY) for due, offset in cases}
    assert in_sql == in_python
    # The edges: a step on its day, a pre-due reminder on the due date itself (still due) and
    # the day after (stale), a follow-up one day early (not yet).
    assert in_python[(TODAY + 3 * DAY, -3)] and in_python[(TODAY, -3)]
    assert not in_python[(TODAY - DAY, -3)] and not in_python[(TODAY, 1)] and in_python[(TODAY - DAY, 1)]


def test_a_promise_not_kept_is_one_rule(gerente):
    client = make_client(by=gerente)
    made = {}
    for kind in ("promise", "extension", "plan"):
        for status in ("open", "kept", "partial", "broken", "cancelled"):
            made[(kind, status)] = Commitment.objects.create(
                client=client,
                kind=kind,
                status=status,
                currency="MXN",
                total=Decimal("1"),
                made_on=TODAY,
                resolved_on=None if status == "open" else TODAY,
            )
    in_orm = set(Commitment.objects.filter(rules.promise_not_kept_q()).values_list("pk", flat=True))
    in_python = {c.pk for c in made.values() if rules.is_not_kept_promise(c)}
    assert in_orm == in_python == {made[(k, s)].pk for k in ("promise", "extension") for s in ("partial", "broken")}
