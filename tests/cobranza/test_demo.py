"""seed_demo's collections state (cobranza.demo): disputes, promises, plans, profiles."""

import datetime as dt
import io
import re
from collections import Counter

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.demo import reset_ledger
from accounts.models import Client, Interaction, Invoice
from cobranza import demo as cobranza_demo
from cobranza.dashboard import metrics
from cobranza.models import ClientProfile, CollectorTask, Commitment, Dispute, InboundMessage, TaskKind
from cobranza.replies.selectors import unread_replies
from cobranza.worklist import selectors as wl

pytestmark = pytest.mark.django_db
TODAY = dt.date(2026, 3, 15)


def seed(clients: int = 40, seed: int = 42) -> str:
    out = io.StringIO()
    call_command("seed_demo", "--clients", str(clients), "--today", TODAY.isoformat(), "--seed", str(seed), stdout=out)
    return out.getvalue()


def test_the_demo_gives_every_collections_page_something_true_to_show():
    out = seed()
    assert "cobranza:" in out
    # Every disputed invoice belongs to a Dispute with an owner and a task.
    disputed = set(Invoice.objects.filter(status="disputed").values_list("pk", flat=True))
    assert disputed and disputed == set(Dispute.objects.values_list("invoices", flat=True))
    assert CollectorTask.objects.filter(kind=TaskKind.DISPUTE).count() == Dispute.objects.count()
    # Promises and plans exist, open ones (reminders paused) and judged ones.
    kinds = set(Commitment.objects.values_list("kind", flat=True))
    assert kinds == {"promise", "plan"}
    assert Commitment.objects.filter(status="open").exists()
    assert Commitment.objects.exclude(status="open").exists()
    for c in Commitment.objects.exclude(status="open"):
        assert c.resolved_on <= TODAY
    # Timeline entries about the seeded past are dated in it, never after --today.
    latest = Interaction.objects.order_by("-occurred_at").values_list("occurred_at", flat=True).first()
    assert latest.date() <= TODAY
    # Profiles for every client.
    assert ClientProfile.objects.count() == Client.objects.count()
    # Debtors wrote back yesterday: unread, in their timeline, on their collector's worklist.
    unread = list(unread_replies().select_related("client__collector"))
    assert len(unread) == 3 and "3 respuestas de clientes" in out
    for message in unread:
        assert message.received_at.date() == TODAY - dt.timedelta(days=1)
        assert message.interaction.direction == "inbound" and message.client.collector is not None
        queue = wl.worklist(user=message.client.collector, scope=wl.Scope.of_collector(message.client.collector))
        row = next(c for c in queue if c.pk == message.client_id)
        assert row.reply_count == 1
    assert InboundMessage.objects.filter(client__isnull=True, channel="sms").count() == 1
    # The demo's eleven months of roll rates follow the invoices: none over 100 %.
    trend = metrics.trend(metrics.Filters.default(today=TODAY))
    rates = [rate for row in trend.roll for rate in row.rates if rate is not None]
    assert len(trend.roll) == 11 and rates and max(rates) <= 100


def test_the_demo_state_is_deterministic_for_a_seed():
    def snapshot():
        return (
            sorted(
                Commitment.objects.values_list("client__tax_id", "kind", "status", "total", "made_on", "resolved_on")
            ),
            sorted(Dispute.objects.values_list("client__tax_id", "reason", "owner__username")),
            sorted(ClientProfile.objects.values_list("client__tax_id", "computed")),
        )

    seed(seed=5)
    first = snapshot()
    out = io.StringIO()
    call_command("seed_demo", "--clients", "40", "--today", TODAY.isoformat(), "--seed", "5", "--reset", stdout=out)
    assert snapshot() == first


def _statements(clients: int) -> list[str]:
    """The SQL statements a whole ``seed_demo`` of ``clients`` clients sends, on an emptied ledger."""
    reset_ledger()
    with CaptureQueriesContext(connection) as queries:
        call_command("seed_demo", "--clients", str(clients), "--today", TODAY.isoformat(), stdout=io.StringIO())
    return [q["sql"] for q in queries.captured_queries]


def test_no_statement_of_the_seed_is_sent_once_per_client(monkeypatch):
    """Every phase is set-based (COPY, INSERT … SELECT): a seed of four times the clients sends
    the same statements, not one more per client, invoice or entry, so a 100,000-client seed
    sends what a 25-client one does (one chunk of the bulk writer here). Only the commitments
    go through the staff's services, for a sample of clients bounded by MAX_COMMITMENTS
    (bounded the same at both sizes here): which clients it picks, and so which services'
    branches run, still moves a few statements either way."""
    monkeypatch.setattr(cobranza_demo, "MAX_COMMITMENTS", 3)
    _statements(25)  # the first seed also creates the demo users and the business
    small, large = Counter(map(_shape, _statements(25))), Counter(map(_shape, _statements(100)))
    grown = {shape: (small[shape], n) for shape, n in large.items() if n > small[shape] + 10}
    assert not grown
    assert sum(large.values()) < 1.1 * sum(small.values())


def _shape(sql: str) -> str:
    """A statement without its values: lists, quoted strings and numbers (savepoint names too)."""
    sql = re.sub(r"'(?:[^']|'')*'", "?", sql)
    sql = re.sub(r"ARRAY\[[^\]]*\]", "ARRAY[…]", sql)
    sql = re.sub(r" IN \([^()]*\)", " IN (…)", sql)
    return re.sub(r"\d+", "0", sql)[:200]


def _snapshot_rows() -> list[tuple]:
    from cobranza.models import AgingSnapshot

    columns = [f.attname for f in AgingSnapshot._meta.concrete_fields if f.attname not in ("id", "computed_at")]
    return sorted(AgingSnapshot.objects.values_list(*columns))


@pytest.mark.django_db(transaction=True)
def test_with_the_ledger_committed_the_month_end_closes_run_beside_the_rest_and_match(monkeypatch):
    """Outside a transaction (``make run``, a shell) the closes run on a connection of their
    own while the history, profiles and alerts are written; they store what closes taken in
    turn store, and leave no connection open."""
    threads = []
    closes = cobranza_demo._closes

    def recorded(*args):
        import threading

        threads.append(threading.current_thread().name)
        return closes(*args)

    monkeypatch.setattr(cobranza_demo, "_closes", recorded)
    seed(clients=25)
    assert len(threads) == 1 and threads[0].startswith("seed-month-end")
    beside = _snapshot_rows()
    assert len({row[0] for row in beside}) == 13  # thirteen month ends, each with rows
    with connection.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND backend_type = 'client backend'"
        )
        assert cur.fetchone()[0] == 0

    from cobranza.dashboard import jobs as dashboard_jobs

    dashboard_jobs.backfill_snapshots(months=13, today=TODAY)  # in turn, on this connection: replaces them
    assert _snapshot_rows() == beside
