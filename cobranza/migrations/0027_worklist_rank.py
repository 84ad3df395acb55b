# ruff: noqa: S608 - only fixed table and column names are interpolated
"""The worklist's stored ranking facts and the triggers that record which clients a write
touched (docs/domain.md#worklist-ranking; cobranza.models.WorklistRank)."""

from decimal import Decimal

from django.db import migrations, models

DIRTY = "cobranza_worklistrankdirty"

# table -> (the clients of a set of its rows ``{r}``, the columns the facts read, events)
# A client row with nothing yet has no facts: inserting one records nothing.
TABLES = {
    "accounts_invoice": (
        "SELECT client_id FROM {r}",
        ("client_id", "status", "open_balance", "due_date", "currency"),
        ("INSERT", "UPDATE", "DELETE"),
    ),
    "cobranza_invoicehold": (
        "SELECT i.client_id FROM {r} JOIN accounts_invoice i ON i.id = {r}.invoice_id",
        ("invoice_id", "until"),
        ("INSERT", "UPDATE", "DELETE"),
    ),
    "cobranza_commitment": (
        "SELECT client_id FROM {r}",
        ("client_id", "kind", "status", "resolved_on"),
        ("INSERT", "UPDATE", "DELETE"),
    ),
    "cobranza_commitment_invoices": (
        "SELECT m.client_id FROM {r} JOIN cobranza_commitment m ON m.id = {r}.commitment_id",
        ("commitment_id", "invoice_id"),
        ("INSERT", "UPDATE", "DELETE"),
    ),
    "accounts_client": (
        "SELECT id FROM {r}",
        ("segment_id", "status", "collector_id", "country", "time_zone"),
        ("UPDATE", "DELETE"),
    ),
    "cobranza_clientdunning": (
        "SELECT client_id FROM {r}",
        ("client_id", "policy_id", "paused_until"),
        ("INSERT", "UPDATE", "DELETE"),
    ),
    "cobranza_clientprofile": (
        "SELECT client_id FROM {r}",
        ("client_id", "computed", "override"),
        ("INSERT", "UPDATE", "DELETE"),
    ),
    # Every client's facts may change: one row without a client.
    "cobranza_policy": (
        "SELECT NULL::bigint FROM {r}",
        ("segment_id", "tolerance", "is_active", "profile"),
        ("INSERT", "UPDATE", "DELETE"),
    ),
    "accounts_segment": ("SELECT NULL::bigint FROM {r}", ("priority_weight",), ("UPDATE", "DELETE")),
}


def _function(table: str) -> str:
    clients, columns, _events = TABLES[table]
    old = ", ".join(f"o.{c}" for c in columns)
    new = ", ".join(f"n.{c}" for c in columns)
    insert = f"INSERT INTO {DIRTY} (client_id) SELECT DISTINCT t.client_id FROM ({{rows}}) AS t (client_id)"
    return f"""
CREATE OR REPLACE FUNCTION worklist_rank_dirty_{table}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    {insert.format(rows=clients.format(r="new_rows"))};
  ELSIF TG_OP = 'DELETE' THEN
    {insert.format(rows=clients.format(r="old_rows"))};
  ELSE
    WITH changed AS (
      SELECT o.id FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE ROW({old}) IS DISTINCT FROM ROW({new})),
    o_rows AS (SELECT * FROM old_rows WHERE id IN (SELECT id FROM changed)),
    n_rows AS (SELECT * FROM new_rows WHERE id IN (SELECT id FROM changed))
    {insert.format(rows=clients.format(r="o_rows") + " UNION ALL " + clients.format(r="n_rows"))};
  END IF;
  RETURN NULL;
END $$;"""


def _triggers(table: str) -> str:
    sql = [_function(table)]
    referencing = {
        "INSERT": "NEW TABLE AS new_rows",
        "UPDATE": "OLD TABLE AS old_rows NEW TABLE AS new_rows",
        "DELETE": "OLD TABLE AS old_rows",
    }
    for event in TABLES[table][2]:
        sql.append(
            f"CREATE TRIGGER worklist_rank_dirty_{event.lower()} AFTER {event} ON {table} "
            f"REFERENCING {referencing[event]} FOR EACH STATEMENT EXECUTE FUNCTION worklist_rank_dirty_{table}();"
        )
    return "\n".join(sql)


def _drop(table: str) -> str:
    sql = [f"DROP TRIGGER IF EXISTS worklist_rank_dirty_{e.lower()} ON {table};" for e in TABLES[table][2]]
    sql.append(f"DROP FUNCTION IF EXISTS worklist_rank_dirty_{table}();")
    return "\n".join(sql)


class Migration(migrations.Migration):
    dependencies = [
        ("cobranza", "0026_business_number_format"),
    ]

    operations = [
        migrations.CreateModel(
            name="WorklistRank",
            fields=[
                ("client_id", models.BigIntegerField(primary_key=True, serialize=False)),
                ("at_risk", models.DecimalField(decimal_places=2, max_digits=18, null=True)),
                ("at_risk_currency", models.CharField(max_length=3, null=True)),
                ("has_risk", models.BooleanField(default=False)),
                ("ladder", models.BooleanField(default=False)),
                ("overdue_max", models.DecimalField(decimal_places=2, default=Decimal("0.00"), max_digits=18)),
                ("oldest_overdue", models.DateField(null=True)),
                ("broken_count", models.IntegerField(default=0)),
                ("base_score", models.IntegerField(default=0)),
                ("collector_id", models.BigIntegerField(null=True)),
                ("country", models.CharField(default="", max_length=2)),
                ("time_zone", models.CharField(default="", max_length=64)),
            ],
            options={
                "indexes": [
                    models.Index(
                        models.F("country"),
                        models.F("time_zone"),
                        models.OrderBy(models.F("base_score"), descending=True),
                        models.OrderBy(models.F("oldest_overdue"), nulls_last=True),
                        models.OrderBy(models.F("overdue_max"), descending=True),
                        condition=models.Q(("has_risk", True), ("ladder", True)),
                        name="worklist_rank_order",
                    ),
                    models.Index(
                        models.F("collector_id"),
                        models.F("country"),
                        models.F("time_zone"),
                        models.OrderBy(models.F("base_score"), descending=True),
                        models.OrderBy(models.F("oldest_overdue"), nulls_last=True),
                        models.OrderBy(models.F("overdue_max"), descending=True),
                        condition=models.Q(("has_risk", True), ("ladder", True)),
                        name="worklist_rank_collector_order",
                    ),
                ],
            },
        ),
        migrations.CreateModel(
            name="WorklistRankDirty",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("client_id", models.BigIntegerField(null=True)),
            ],
            options={
                "indexes": [models.Index(fields=["client_id"], name="worklist_dirty_client")],
            },
        ),
        migrations.CreateModel(
            name="WorklistRankState",
            fields=[
                ("id", models.SmallIntegerField(default=1, primary_key=True, serialize=False)),
                ("computed_on", models.DateField()),
            ],
            options={
                "constraints": [
                    models.CheckConstraint(condition=models.Q(("id", 1)), name="worklist_rank_state_one_row")
                ],
            },
        ),
        migrations.RunSQL(sql="\n".join(_triggers(t) for t in TABLES), reverse_sql="\n".join(_drop(t) for t in TABLES)),
    ]
