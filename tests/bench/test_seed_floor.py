"""scripts/bench/seed_floor: the write floor under seed_demo, measured on a small seeded portfolio.

Times are never asserted; what is checked is that the floor measures the real thing (every
row of every table that goes with the clients, copied; every index and foreign key of those
tables, built and checked) and leaves the database as it was."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.db import connection

from accounts.demo import portfolio_models
from scripts.bench import seed_floor

pytestmark = pytest.mark.django_db


def _catalogue(tables: list[str]) -> tuple[int, int]:
    with connection.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid "
            "WHERE c.relname = ANY(%s) AND c.relnamespace = 'public'::regnamespace",
            [tables],
        )
        indexes = cur.fetchone()[0]
        cur.execute(
            "SELECT count(*) FROM pg_constraint con JOIN pg_class t ON t.oid = con.conrelid "
            "WHERE con.contype = 'f' AND t.relname = ANY(%s) AND t.relnamespace = 'public'::regnamespace",
            [tables],
        )
        return indexes, cur.fetchone()[0]


def test_the_floor_copies_every_row_index_and_key_of_the_portfolio_and_leaves_nothing():
    call_command("seed_demo", "--clients", "25", "--today", dt.date(2026, 3, 15).isoformat(), stdout=io.StringIO())
    models = portfolio_models()
    tables = [m._meta.db_table for m in models]
    counts = {m._meta.db_table: m._base_manager.count() for m in models}
    assert counts["accounts_invoice"] > 100 and counts["cobranza_notice"] > 0  # a portfolio with history

    said: list[str] = []
    floor = seed_floor.measure(log=said.append)

    assert floor.rows == counts
    assert (floor.indexes, floor.foreign_keys) == _catalogue(tables)
    assert floor.indexes > len(tables) and floor.foreign_keys > 0
    for phase in seed_floor.PHASES:
        assert floor.total(phase) > 0, phase
    assert {app for _phase, app in floor.seconds} == {"accounts", "cobranza"}
    assert floor.total() == pytest.approx(sum(floor.total(p) for p in seed_floor.PHASES))
    lines = floor.lines()
    assert lines[-1].startswith(f"{sum(counts.values()):,} rows in {len(tables)} tables")
    assert len(said) == 4
    # Rolled back: no scratch schema, and the portfolio as it was.
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_namespace WHERE nspname = %s", [seed_floor.SCHEMA])
        assert cur.fetchone()[0] == 0
    assert {m._meta.db_table: m._base_manager.count() for m in models} == counts


def test_the_command_refuses_an_empty_database(capsys, monkeypatch):
    monkeypatch.setattr(seed_floor.django, "setup", lambda: None)  # pytest-django set Django up already
    assert seed_floor.main() == 2
    assert "run seed_demo first" in capsys.readouterr().err
