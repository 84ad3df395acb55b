"""The benchmark harness at a small scale (scripts/bench, `make bench` runs it at 100,000
clients): the same COPY loader, then the measured pages' query counts pinned (a regression
in query count fails here; times are never asserted) and the dunning planner checked against
the hand-written single SQL statement the benchmark compares it with."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone

from cobranza.engine.planner import plan
from scripts.bench import loader
from scripts.bench import pages as bench_pages
from scripts.bench.planner_sql import plan_by_hand, planned_rows, reset_day

pytestmark = pytest.mark.django_db

N_CLIENTS, N_INVOICES = 300, 3000

# Observed with the loader's data; a change means the page now runs a different number of
# queries. If it went down, lower the constant; if it went up, find the query that was added.
EXPECTED_QUERIES = {
    "dashboard": 22,  # + the cash forecast (1)
    "worklist_collector": 15,  # + the call windows of the scope's countries and time zones (3), unread replies (1)
    "worklist_manager": 16,  # (idem)
    "client_list": 7,
    "client_list_search": 9,  # + what the search matched on the page: invoices, contacts (2)
    "client_list_search_invoice": 9,
    "client_list_search_typo": 9,
    # The header box's suggestions (accounts.selectors.client_suggestions): session, user, roles,
    # the two best ranks, what matched (2); when those are too few, every match ranked with the
    # stricter typo tolerance (savepoint, set_config, the query, rollback).
    "client_suggest_invoice": 11,
    "client_suggest_typo": 11,
    "client_suggest_broad": 7,
    # The summary (goal ≤ 12): + client, balances (2), last contact, alerts, replies, profile,
    # next reminder. The sections: + client and their own reads (tests/accounts/test_query_counts.py).
    "client_detail": 11,
    "client_section_facturas": 5,
    "client_section_pagos": 6,
    "client_section_historial": 5,  # the loader writes no timeline: its count, no page
    "client_section_contactos": 5,
    "client_section_cobranza": 28,
    "client_section_cambios": 5,  # the loader (COPY) writes no audit entries
}


@pytest.fixture
def portfolio():
    result = loader.load(n_clients=N_CLIENTS, n_invoices=N_INVOICES, today=timezone.localdate(), seed=3)
    # Statistics of the loaded rows, as the benchmark takes them after its load (loader.analyze;
    # VACUUM cannot run in the test's transaction). Without them the planner works from what an
    # earlier test left: an ANALYZE in a rolled-back transaction keeps its row counts in pg_class
    # (an in-place update) but not its column statistics, and the month-end cube was planned as
    # nested loops that took minutes on these 3,000 invoices.
    with connection.cursor() as cur:
        cur.execute("ANALYZE " + ", ".join([*loader.LEDGER_TABLES, "accounts_interaction_invoices", *loader.TABLES]))
    return result


def test_the_loader_keeps_the_ledger_invariants(portfolio):
    with connection.cursor() as cur:
        cur.execute(
            """
            SELECT count(*) FROM accounts_invoice i
            WHERE i.amount_paid <> COALESCE((SELECT sum(a.amount) FROM accounts_paymentallocation a
                                             WHERE a.invoice_id = i.id), 0)
            """
        )
        assert cur.fetchone()[0] == 0
        cur.execute(
            """
            SELECT count(*) FROM accounts_payment p
            WHERE p.amount - p.unallocated <> (SELECT sum(a.amount) FROM accounts_paymentallocation a
                                               WHERE a.payment_id = p.id)
            """
        )
        assert cur.fetchone()[0] == 0
        cur.execute("SELECT count(*) FROM accounts_invoice")
        assert cur.fetchone()[0] == N_INVOICES
        cur.execute("SELECT count(DISTINCT status) FROM accounts_invoice")
        assert cur.fetchone()[0] >= 5  # open, partially paid, paid, disputed, written off / cancelled
    assert portfolio.counts["accounts_client"] == N_CLIENTS
    assert portfolio.counts["cobranza_commitment"] > 0


def test_the_measured_pages_keep_their_query_counts(portfolio):
    User = get_user_model()
    users = {
        "manager": User.objects.get(username="bench_gerente"),
        "collector": User.objects.get(username="bench_gestor00"),
    }
    clients = {k: bench_pages.logged_in(u) for k, u in users.items()}
    observed = {
        page.key: bench_pages.query_count(clients[page.user], page.url)
        for page in bench_pages.pages(
            big_client_id=portfolio.big_client_id,
            search="Ferreter",
            specific=bench_pages.specific_searches(portfolio.big_client_id),
        )
    }
    assert observed == EXPECTED_QUERIES


def test_the_planner_plans_the_same_rows_as_the_hand_written_statement(portfolio):
    today = timezone.localdate()
    now = timezone.make_aware(dt.datetime.combine(today, dt.time(7, 0)))
    result = plan(today=today, now=now)
    by_planner = planned_rows(today=today)
    # Planned notices and the superseded ones they pass over (docs/domain.md#pacing).
    assert result.notices + result.superseded == len(by_planner[0]) > 0
    assert result.notices > 0 and result.superseded > 0
    reset_day(today=today)
    assert planned_rows(today=today) == ([], [])
    plan_by_hand(today=today, now=now)
    assert planned_rows(today=today) == by_planner
