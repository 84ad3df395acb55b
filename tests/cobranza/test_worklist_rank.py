"""The worklist's stored ranking facts (``cobranza.models.WorklistRank``): the queue read from
them — with the clients written to since recomputed as it is read — equals the per-client
reference of test_worklist_sql.py after a mixed history of writes; recomputing the touched
clients gives the same facts as recomputing everybody from scratch; a policy change makes the
queue recompute everyone until the next refresh."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection

from accounts import services as ledger
from accounts import services_bulk as bulk
from accounts.models import Client, Invoice, Segment
from cobranza.models import (
    ClientDunning,
    ClientProfile,
    Commitment,
    InvoiceHold,
    Policy,
    WorklistRank,
    WorklistRankDirty,
    WorklistRankState,
)
from cobranza.worklist import jobs
from cobranza.worklist import selectors as wl
from tests.cobranza.test_worklist import _days_ago
from tests.cobranza.test_worklist_sql import SCOPES, TODAY, _facts, _reference, mixed  # noqa: F401 - the fixture
from tests.factories import make_client, make_invoice

pytestmark = pytest.mark.django_db


def _stored() -> list[tuple]:
    return sorted(WorklistRank.objects.values_list(*wl.FACT_COLUMNS, "base_score"))


def _fresh(today) -> bool:
    return (
        WorklistRankState.objects.filter(computed_on=today).exists()
        and not WorklistRankDirty.objects.filter(client_id__isnull=True).exists()
    )


def _history(gerente) -> None:
    """Writes of every kind the stored facts depend on, through services and plain SQL alike."""
    by_name = {c.legal_name: c for c in Client.objects.all()}
    # A payment lowers a quiet client's amount at risk.
    ledger.payment_record(by=gerente, client=by_name["Quieto Grande"], amount=Decimal("45000.00"), received_on=TODAY)
    # A hold takes an invoice out; a released hold puts one back.
    InvoiceHold.objects.create(invoice=Invoice.objects.get(client=by_name["Tie C"]), reason="Revisión")
    InvoiceHold.objects.filter(invoice__client=by_name["Retenida"]).delete()
    # A pause takes a quiet client out of the queue; a commitment cancelled puts one in.
    ClientDunning.objects.create(client=by_name["Quieto Dólares"], paused_until=TODAY, pause_reason="Negocia")
    Commitment.objects.filter(client=by_name["Prometida"]).update(status="cancelled", resolved_on=TODAY)
    # Profile and segment move the score.
    ClientProfile.objects.create(client=by_name["Tie A"], computed="good")
    Client.objects.filter(pk=by_name["Política Propia"].pk).update(segment=Segment.objects.get(code="cuenta-clave"))
    # Back from the agency: the ladder acts on it again.
    Client.objects.filter(pk=by_name["Con Agencia"].pk).update(status="active")
    # New quiet clients at risk, one invoice through the services and one written by the bulk
    # writer's COPY; a balance change in plain SQL.
    newcomer = make_client(by=gerente, collector=None, legal_name="Recién Llegado")
    make_invoice(by=gerente, client=newcomer, amount="900000.00", due_date=_days_ago(70))
    imported = make_client(by=gerente, collector=None, legal_name="Importado")
    bulk.invoices_bulk_create(
        by=gerente,
        invoices=[
            bulk.NewInvoice(
                client=imported,
                number="IMP-1",
                issue_date=_days_ago(200),
                due_date=_days_ago(150),
                amount=Decimal("80000"),
            )
        ],
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Invoice._meta.db_table} SET amount_paid = amount - amount / 10, status = 'partially_paid'"
            " WHERE client_id = %s",
            [by_name["Tie B"].pk],
        )


@pytest.mark.usefixtures("mixed")
@pytest.mark.parametrize("scope_name", list(SCOPES))
def test_the_queue_from_stored_facts_equals_the_reference_after_a_mixed_history(gerente, gestora, gestor, scope_name):
    users = {"gerente": gerente, "gestora": gestora, "gestor": gestor}
    who, make_scope = SCOPES[scope_name]
    user, scope = users[who], make_scope(users)
    jobs.worklist_rank_refresh(today=TODAY)
    assert _fresh(TODAY) and not WorklistRankDirty.objects.exists()
    expected = _facts(_reference(user=user, scope=scope, today=TODAY))
    queue = wl.worklist(user=user, scope=scope, today=TODAY)
    assert _facts(queue) == expected and queue.count() == len(expected)

    _history(gerente)
    assert _fresh(TODAY) and WorklistRankDirty.objects.exists()
    expected = _facts(_reference(user=user, scope=scope, today=TODAY))
    names = {row[0] for row in expected}
    assert {Client.objects.get(legal_name=n).pk for n in ("Recién Llegado", "Importado")} <= names or (
        scope.kind != wl.ALL
    )
    for n in (1, 3, len(expected) + 2):
        paged = wl.worklist(user=user, scope=scope, today=TODAY)
        assert paged.count() == len(expected)
        pages = [_facts(paged[i : i + n]) for i in range(0, len(expected), n)]
        assert [row for page in pages for row in page] == expected

    # The touched clients recomputed: the same facts as everybody's from scratch.
    jobs.worklist_rank_refresh_touched(today=TODAY)
    assert not WorklistRankDirty.objects.exists()
    touched = _stored()
    jobs.worklist_rank_refresh(today=TODAY)
    assert _stored() == touched
    assert _facts(wl.worklist(user=user, scope=scope, today=TODAY)) == expected


@pytest.mark.usefixtures("mixed")
def test_stored_facts_of_another_day_are_not_used(gerente):
    jobs.worklist_rank_refresh(today=TODAY - dt.timedelta(days=1))
    for day in (TODAY, TODAY + dt.timedelta(days=40)):
        expected = _facts(_reference(user=gerente, scope=wl.Scope(), today=day))
        queue = wl.worklist(user=gerente, scope=wl.Scope(), today=day)
        assert _facts(queue) == expected and queue.count() == len(expected)
    # Nothing is recomputed for the touched clients until the full refresh is done.
    _history(gerente)
    dirty = WorklistRankDirty.objects.count()
    assert jobs.worklist_rank_refresh_touched(today=TODAY)["clients"] == 0
    assert WorklistRankDirty.objects.count() == dirty


@pytest.mark.usefixtures("mixed")
def test_a_policy_change_makes_the_queue_recompute_everyone_until_the_refresh(gerente):
    jobs.worklist_rank_refresh(today=TODAY)
    assert Policy.objects.filter(segment__isnull=False).update(tolerance=Decimal("60000.00"))
    assert not _fresh(TODAY)
    expected = _facts(_reference(user=gerente, scope=wl.Scope(), today=TODAY))
    assert _facts(wl.worklist(user=gerente, scope=wl.Scope(), today=TODAY)) == expected
    jobs.worklist_rank_refresh(today=TODAY)
    assert _fresh(TODAY) and not WorklistRankDirty.objects.exists()
    assert _facts(wl.worklist(user=gerente, scope=wl.Scope(), today=TODAY)) == expected


@pytest.mark.usefixtures("mixed")
def test_writes_unrelated_to_the_facts_record_nothing(gerente):
    jobs.worklist_rank_refresh(today=TODAY)
    invoice = Invoice.objects.filter(status="open").first()
    Invoice.objects.filter(pk=invoice.pk).update(description="Otra descripción")
    Client.objects.filter(pk=invoice.client_id).update(notes="Nota")
    assert not WorklistRankDirty.objects.exists()
