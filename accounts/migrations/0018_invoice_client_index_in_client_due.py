# The invoice's own index on client_id is dropped: invoice_client_due (client_id, due_date)
# has client_id as its first column and serves every lookup by client, and an imported
# invoice pays for each index it is written into. Only the index goes: the foreign key stays
# (Django's AlterField would drop and re-add it, validating every row again).

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0017_client_zone_index"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="invoice",
                    name="client",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="invoices",
                        to="accounts.client",
                        verbose_name="cliente",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    'DROP INDEX IF EXISTS "accounts_invoice_client_id_05d3f477"',
                    reverse_sql=(
                        'CREATE INDEX "accounts_invoice_client_id_05d3f477" ON "accounts_invoice" ("client_id")'
                    ),
                ),
            ],
        ),
    ]
