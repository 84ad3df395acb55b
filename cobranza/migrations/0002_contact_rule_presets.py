"""Contact-rule presets (Mexico, Spain, USA) and their public holidays."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("cobranza", "0001_dunning")]

    operations = []
