from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('cobranza', '0011_outgoing_webhooks'),
    ]

    operations = [
        migrations.CreateModel(
            name='DashboardSummary',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('key', models.CharField(max_length=64, unique=True)),
                ('filters', models.JSONField()),
                ('language', models.CharField(max_length=10)),
                ('data', models.BinaryField()),
                ('computed_at', models.DateTimeField()),
                ('duration_ms', models.PositiveIntegerField()),
                ('viewed_at', models.DateTimeField()),
            ],
            options={
                'verbose_name': 'resumen del tablero',
                'verbose_name_plural': 'resúmenes del tablero',
            },
        ),
    ]
