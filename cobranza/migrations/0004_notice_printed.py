"""Letters: who printed a letter notice's PDF for mailing, and when (null: still to print)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("cobranza", "0003_default_ladders"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="notice",
            name="printed_at",
            field=models.DateTimeField(blank=True, null=True, verbose_name="impresa"),
        ),
        migrations.AddField(
            model_name="notice",
            name="printed_by",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
                verbose_name="impresa por",
            ),
        ),
    ]
