# ruff: noqa: S608 - only fixed table and column names are interpolated
"""The worklist's dirty triggers (0027): the UPDATE branch planned at each call.

PL/pgSQL keeps the plan of a statement without parameters for the whole session. The UPDATE
branch joins the statement's old and new rows; planned once on empty transition tables (an
UPDATE that changed nothing, or an ``INSERT … ON CONFLICT DO UPDATE`` that inserted only), the
kept plan is a nested loop, and a later UPDATE of 20,000 rows then took minutes instead of a
second (the demo seed's good-payer standing, after the profiles' upsert). ``EXECUTE`` plans the
statement for the rows at hand. What is recorded does not change."""

import importlib

from django.db import migrations

rank = importlib.import_module("cobranza.migrations.0027_worklist_rank")


def _function(table: str) -> str:
    clients, columns, _events = rank.TABLES[table]
    old = ", ".join(f"o.{c}" for c in columns)
    new = ", ".join(f"n.{c}" for c in columns)
    insert = f"INSERT INTO {rank.DIRTY} (client_id) SELECT DISTINCT t.client_id FROM ({{rows}}) AS t (client_id)"
    update = (
        "WITH changed AS ("
        f"SELECT o.id FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE ROW({old}) IS DISTINCT FROM ROW({new})), "
        "o_rows AS (SELECT * FROM old_rows WHERE id IN (SELECT id FROM changed)), "
        "n_rows AS (SELECT * FROM new_rows WHERE id IN (SELECT id FROM changed)) "
        + insert.format(rows=clients.format(r="o_rows") + " UNION ALL " + clients.format(r="n_rows"))
    )
    quoted = update.replace("'", "''")
    return f"""
CREATE OR REPLACE FUNCTION worklist_rank_dirty_{table}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    {insert.format(rows=clients.format(r="new_rows"))};
  ELSIF TG_OP = 'DELETE' THEN
    {insert.format(rows=clients.format(r="old_rows"))};
  ELSE
    EXECUTE '{quoted}';
  END IF;
  RETURN NULL;
END $$;"""


class Migration(migrations.Migration):
    dependencies = [
        ("cobranza", "0029_settlement_offsets"),
    ]

    operations = [
        migrations.RunSQL(
            sql="\n".join(_function(t) for t in rank.TABLES),
            reverse_sql="\n".join(rank._function(t) for t in rank.TABLES),
        ),
    ]
