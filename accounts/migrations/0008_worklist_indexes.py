# The worklist ("Mi cartera hoy") at scale: a client's collectible invoices index-only, and the
# later person-made interaction that closes a next action found by an index probe.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0007_invoice_report_indexes"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="invoice",
            index=models.Index(
                condition=models.Q(("status__in", ["open", "partially_paid", "disputed"]), ("open_balance__gt", 0)),
                fields=["client", "due_date"],
                include=["currency", "open_balance"],
                name="invoice_client_collectible",
            ),
        ),
        migrations.AddIndex(
            model_name="interaction",
            index=models.Index(
                condition=models.Q(("kind", "system"), _negated=True),
                fields=["client", "occurred_at", "id"],
                name="interaction_client_contact",
            ),
        ),
    ]
