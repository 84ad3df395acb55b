"""Contact-rule presets for the Spanish-speaking markets, and national holidays from the
``holidays`` package instead of hand-typed rows.

Presets, not legal advice: each carries its basis in ``notes`` (docs/domain.md#contact-rules
lists them with their sources) and asks the user's counsel to review it. A preset the user
already has (the country exists) is left as it is; only the new fields are filled for the
shipped Mexican, Spanish and US presets, where still empty.

The national holidays that 0002 wrote as rows for 2026 and 2027 are now computed by the
engine from the ``holidays`` package for any year; the rows equal to the package's are removed
so there is one source. Rows the user added or renamed stay (regional holidays, for one).
"""

import datetime as dt

import holidays
from django.db import migrations

WEEKDAYS = "1,2,3,4,5"
MON_SAT = "1,2,3,4,5,6"
REVIEW = " Preajuste de referencia, a revisar por su asesor legal."

PRESETS = {
    "CO": {
        "name": "Colombia (Ley 2300 de 2023)",
        "start_time": dt.time(7),
        "end_time": dt.time(19),
        "saturday_start_time": dt.time(8),
        "saturday_end_time": dt.time(15),
        "weekdays": MON_SAT,
        "max_per_channel_7d": 1,
        "max_calls_7d": 1,
        "max_contacts_7d": 2,
        "notes": "Ley 2300 de 2023 («Dejen de fregar»), art. 3: gestiones de cobranza de lunes a viernes de "
        "7:00 a 19:00 y sábados de 8:00 a 15:00, nunca domingos ni festivos; una vez por semana por el mismo "
        "canal y no más de dos veces por semana entre todos los canales, solo por los canales que el deudor "
        "autorizó." + REVIEW,
    },
    "CL": {
        "name": "Chile (Ley 19.496, art. 37)",
        "start_time": dt.time(8),
        "end_time": dt.time(20),
        "weekdays": MON_SAT,
        "max_per_channel_7d": 1,
        "max_calls_7d": 1,
        "max_contacts_7d": 2,
        "notes": "Ley 19.496 de protección de los derechos de los consumidores, art. 37 (reformado por la Ley "
        "21.320 de 2021): la cobranza extrajudicial solo en días y horas hábiles (lunes a sábado, 8:00 a "
        "20:00) y con una frecuencia limitada por semana; sin comunicaciones a terceros ni al lugar de "
        "trabajo. Los límites semanales de este preajuste son los más estrictos de la región." + REVIEW,
    },
    "PE": {
        "name": "Perú (Código de Protección al Consumidor, art. 62)",
        "start_time": dt.time(7),
        "end_time": dt.time(20),
        "weekdays": WEEKDAYS,
        "max_per_channel_7d": 3,
        "max_calls_7d": 3,
        "max_contacts_7d": None,
        "notes": "Ley 29571, Código de Protección y Defensa del Consumidor, art. 62: prohíbe llamadas, "
        "mensajes y visitas de cobranza entre las 20:00 y las 7:00 y los sábados, domingos y feriados, y "
        "cualquier comunicación a terceros o que afecte la reputación del deudor. Los límites de frecuencia "
        "son prudencia, no ley." + REVIEW,
    },
    "AR": {
        "name": "Argentina (Ley 24.240, art. 8 bis)",
        "start_time": dt.time(8),
        "end_time": dt.time(20),
        "weekdays": WEEKDAYS,
        "max_per_channel_7d": 2,
        "max_calls_7d": 3,
        "max_contacts_7d": 4,
        "notes": "Ley 24.240 de Defensa del Consumidor, art. 8 bis: trato digno, sin prácticas intimidatorias "
        "ni vejatorias en la cobranza extrajudicial; las normas del BCRA de protección de usuarios de "
        "servicios financieros rigen para entidades financieras. La ley no fija horario: días hábiles de "
        "8:00 a 20:00 y los límites de frecuencia son prudencia." + REVIEW,
    },
    "EC": {
        "name": "Ecuador (Ley Orgánica de Defensa del Consumidor)",
        "start_time": dt.time(8),
        "end_time": dt.time(20),
        "weekdays": WEEKDAYS,
        "max_per_channel_7d": 2,
        "max_calls_7d": 3,
        "max_contacts_7d": 4,
        "notes": "Ley Orgánica de Defensa del Consumidor y normas de la Junta de Política y Regulación "
        "Financiera sobre cobranza extrajudicial: sin acoso ni comunicaciones a terceros. Días hábiles de "
        "8:00 a 20:00 y los límites de frecuencia son prudencia." + REVIEW,
    },
    "GT": {
        "name": "Guatemala (Decreto 006-2003)",
        "start_time": dt.time(8),
        "end_time": dt.time(19),
        "saturday_start_time": dt.time(8),
        "saturday_end_time": dt.time(13),
        "weekdays": MON_SAT,
        "max_per_channel_7d": 2,
        "max_calls_7d": 3,
        "max_contacts_7d": 4,
        "notes": "Ley de Protección al Consumidor y Usuario (Decreto 006-2003): prohíbe los cobros con "
        "amenazas, intimidación o publicidad de la deuda. La ley no fija horario: lunes a viernes de 8:00 a "
        "19:00, sábados de 8:00 a 13:00 y los límites de frecuencia son prudencia." + REVIEW,
    },
    "CR": {
        "name": "Costa Rica (Ley 7472)",
        "start_time": dt.time(8),
        "end_time": dt.time(19),
        "saturday_start_time": dt.time(8),
        "saturday_end_time": dt.time(13),
        "weekdays": MON_SAT,
        "max_per_channel_7d": 2,
        "max_calls_7d": 3,
        "max_contacts_7d": 4,
        "notes": "Ley 7472 de Promoción de la Competencia y Defensa Efectiva del Consumidor (reformada por la "
        "Ley 9859 de 2020): cobro sin acoso, sin contactar a terceros ni al lugar de trabajo. Horario y "
        "límites de frecuencia de prudencia." + REVIEW,
    },
    "DO": {
        "name": "República Dominicana (Ley 358-05)",
        "start_time": dt.time(8),
        "end_time": dt.time(19),
        "saturday_start_time": dt.time(8),
        "saturday_end_time": dt.time(13),
        "weekdays": MON_SAT,
        "max_per_channel_7d": 2,
        "max_calls_7d": 3,
        "max_contacts_7d": 4,
        "notes": "Ley General de Protección de los Derechos del Consumidor o Usuario (358-05): prohíbe las "
        "prácticas de cobro abusivas o que expongan al deudor. Horario y límites de frecuencia de "
        "prudencia." + REVIEW,
    },
    "UY": {
        "name": "Uruguay (Ley 17.250)",
        "start_time": dt.time(8),
        "end_time": dt.time(20),
        "weekdays": WEEKDAYS,
        "max_per_channel_7d": 2,
        "max_calls_7d": 3,
        "max_contacts_7d": 4,
        "notes": "Ley 17.250 de Relaciones de Consumo, art. 22: prácticas abusivas prohibidas; el Banco Central "
        "regula la cobranza de las entidades financieras. Días hábiles de 8:00 a 20:00 y los límites de "
        "frecuencia son prudencia." + REVIEW,
    },
}

# The shipped presets gain the new overall cap where the law or prudence sets one.
OVERALL = {"MX": 6, "ES": 6, "US": None}


def forwards(apps, schema_editor):
    ContactRules = apps.get_model("cobranza", "ContactRules")
    Holiday = apps.get_model("cobranza", "Holiday")
    for country, fields in PRESETS.items():
        ContactRules.objects.get_or_create(country=country, defaults={"skip_holidays": True, **fields})
    for country, cap in OVERALL.items():
        ContactRules.objects.filter(country=country, max_contacts_7d__isnull=True).update(max_contacts_7d=cap)
    for country in ("MX", "ES", "US"):
        national = holidays.country_holidays(country, years=(2026, 2027))
        for row in Holiday.objects.filter(country=country, date__year__in=(2026, 2027)):
            if row.date in national:
                row.delete()


class Migration(migrations.Migration):
    dependencies = [("cobranza", "0014_contact_rules_markets")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
