"""Search that finds (docs/domain.md#search): trigram indexes for any part of a name, trade
name, tax id, invoice number, contact email and phone digits, and typo-tolerant names.

pg_trgm is a trusted extension (PostgreSQL 13+): the database's owner may create it."""

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations

# The same expression as accounts.selectors.CONTACT_DIGITS_SQL (the planner matches it).
CONTACT_DIGITS = "regexp_replace((phone || '/' || whatsapp), '[^0-9/]', '', 'g')"


class Migration(migrations.Migration):
    dependencies = [("accounts", "0010_clock_defaults")]

    operations = [
        TrigramExtension(),
        migrations.RunSQL(
            "CREATE INDEX client_search_trgm ON accounts_client "
            "USING gin (legal_name gin_trgm_ops, trade_name gin_trgm_ops, tax_id gin_trgm_ops)",
            "DROP INDEX IF EXISTS client_search_trgm",
        ),
        migrations.RunSQL(
            "CREATE INDEX invoice_number_trgm ON accounts_invoice USING gin (number gin_trgm_ops)",
            "DROP INDEX IF EXISTS invoice_number_trgm",
        ),
        migrations.RunSQL(
            f"CREATE INDEX contact_search_trgm ON accounts_contact "
            f"USING gin (email gin_trgm_ops, ({CONTACT_DIGITS}) gin_trgm_ops)",
            "DROP INDEX IF EXISTS contact_search_trgm",
        ),
    ]
