"""Contact-rule presets (Mexico, Spain, USA) and their public holidays.

Presets, not legal advice: each carries its basis in `notes` and asks the user's counsel to
review it. Holidays are the national ones for 2026 and 2027; regional and local holidays
(Spanish autonomous communities, US states) are for the user to add. Movable dates are
computed here, so the migration does not depend on application code or on dateutil.
"""

import datetime as dt

from django.db import migrations

YEARS = (2026, 2027)

RULES = {
    "MX": {
        "name": "México (CONDUSEF)",
        "start_time": dt.time(7),
        "end_time": dt.time(22),
        "weekdays": "1,2,3,4,5,6,7",
        "max_per_channel_7d": 3,
        "max_calls_7d": 7,
        "skip_holidays": True,
        "notes": (
            "Disposiciones de la CONDUSEF para despachos de cobranza (2014): solo se contacta al deudor "
            "de 7:00 a 22:00 en su zona horaria, sin amenazas y sin contactar a terceros distintos de los "
            "avales; los límites de frecuencia son prudencia, no ley. Preajuste de referencia, a revisar "
            "por su asesor legal."
        ),
    },
    "ES": {
        "name": "España",
        "start_time": dt.time(9),
        "end_time": dt.time(21),
        "weekdays": "1,2,3,4,5",
        "max_per_channel_7d": 3,
        "max_calls_7d": None,
        "skip_holidays": True,
        "notes": (
            "Práctica habitual: de 9:00 a 21:00, ni fines de semana ni festivos; por el RGPD la deuda nunca "
            "se revela a terceros, y entre empresas (Ley 3/2004) el interés de demora es el tipo del BCE más "
            "8 puntos, más 40 € por factura. Preajuste orientativo, a revisar por su asesor legal."
        ),
    },
    "US": {
        "name": "Estados Unidos (Regulation F)",
        "start_time": dt.time(8),
        "end_time": dt.time(21),
        "weekdays": "1,2,3,4,5,6,7",
        "max_per_channel_7d": 3,
        "max_calls_7d": 7,
        "skip_holidays": True,
        "notes": (
            "Regulation F (CFPB, 12 CFR 1006): llamadas de 8:00 a 21:00 hora local del deudor; más de 7 "
            "intentos de llamada en 7 días por deuda se presumen acoso (aquí se cuentan por cliente), y cada "
            "correo o mensaje de texto ofrece darse de baja. Preajuste de referencia, a revisar por su "
            "asesor legal."
        ),
    },
}


def easter_sunday(year: int) -> dt.date:
    """Gregorian Easter (the anonymous Gregorian algorithm, Meeus/Jones/Butcher)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    la = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * la) // 451
    month, day = divmod(h + la - 7 * m + 114, 31)
    return dt.date(year, month, day + 1)


def nth_weekday(year: int, month: int, iso_weekday: int, n: int) -> dt.date:
    """The n-th given weekday of a month (n = -1: the last one)."""
    if n > 0:
        first = dt.date(year, month, 1)
        return first + dt.timedelta(days=(iso_weekday - first.isoweekday()) % 7 + 7 * (n - 1))
    last = dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1)
    return last - dt.timedelta(days=(last.isoweekday() - iso_weekday) % 7)


def mx_holidays(year: int) -> list[tuple[dt.date, str]]:
    """Días de descanso obligatorio, Ley Federal del Trabajo art. 74."""
    days = [
        (dt.date(year, 1, 1), "Año Nuevo"),
        (nth_weekday(year, 2, 1, 1), "Día de la Constitución"),
        (nth_weekday(year, 3, 1, 3), "Natalicio de Benito Juárez"),
        (dt.date(year, 5, 1), "Día del Trabajo"),
        (dt.date(year, 9, 16), "Día de la Independencia"),
        (nth_weekday(year, 11, 1, 3), "Día de la Revolución"),
        (dt.date(year, 12, 25), "Navidad"),
    ]
    if year % 6 == 2:  # 1 de octubre, transmisión del Poder Ejecutivo Federal (2024, 2030...)
        days.append((dt.date(year, 10, 1), "Transmisión del Poder Ejecutivo Federal"))
    if year % 3 == 2:  # jornada electoral federal ordinaria: primer domingo de junio (2024, 2027...)
        days.append((nth_weekday(year, 6, 7, 1), "Jornada electoral federal"))
    return days


def es_holidays(year: int) -> list[tuple[dt.date, str]]:
    """Fiestas nacionales; las de las comunidades autónomas y las locales se añaden aparte."""
    return [
        (dt.date(year, 1, 1), "Año Nuevo"),
        (dt.date(year, 1, 6), "Epifanía del Señor"),
        (easter_sunday(year) - dt.timedelta(days=2), "Viernes Santo"),
        (dt.date(year, 5, 1), "Fiesta del Trabajo"),
        (dt.date(year, 8, 15), "Asunción de la Virgen"),
        (dt.date(year, 10, 12), "Fiesta Nacional de España"),
        (dt.date(year, 11, 1), "Todos los Santos"),
        (dt.date(year, 12, 6), "Día de la Constitución Española"),
        (dt.date(year, 12, 8), "Inmaculada Concepción"),
        (dt.date(year, 12, 25), "Natividad del Señor"),
    ]


def us_holidays(year: int) -> list[tuple[dt.date, str]]:
    """Federal holidays (5 U.S.C. 6103); a fixed date on a weekend is also observed on the
    Friday before (Saturday) or the Monday after (Sunday)."""
    fixed = [
        (dt.date(year, 1, 1), "Año Nuevo"),
        (dt.date(year, 6, 19), "Día de la Emancipación (Juneteenth)"),
        (dt.date(year, 7, 4), "Día de la Independencia"),
        (dt.date(year, 11, 11), "Día de los Veteranos"),
        (dt.date(year, 12, 25), "Navidad"),
    ]
    days = [
        *fixed,
        (nth_weekday(year, 1, 1, 3), "Día de Martin Luther King Jr."),
        (nth_weekday(year, 2, 1, 3), "Día de los Presidentes (Washington's Birthday)"),
        (nth_weekday(year, 5, 1, -1), "Día de los Caídos (Memorial Day)"),
        (nth_weekday(year, 9, 1, 1), "Día del Trabajo (Labor Day)"),
        (nth_weekday(year, 10, 1, 2), "Día de Colón (Columbus Day)"),
        (nth_weekday(year, 11, 4, 4), "Día de Acción de Gracias"),
    ]
    # New Year's Day of the next year can be observed on 31 December of this one.
    for day, name in [*fixed, (dt.date(year + 1, 1, 1), "Año Nuevo")]:
        shift = {6: -1, 7: 1}.get(day.isoweekday())
        observed = day + dt.timedelta(days=shift) if shift else None
        if observed is not None and observed.year == year:
            days.append((observed, f"{name} — feriado observado"))
    return days


HOLIDAYS = {"MX": mx_holidays, "ES": es_holidays, "US": us_holidays}


def forwards(apps, schema_editor):
    ContactRules = apps.get_model("cobranza", "ContactRules")
    Holiday = apps.get_model("cobranza", "Holiday")
    for country, fields in RULES.items():
        ContactRules.objects.update_or_create(country=country, defaults=fields)
        for year in YEARS:
            for day, name in HOLIDAYS[country](year):
                Holiday.objects.update_or_create(country=country, date=day, defaults={"name": name})


class Migration(migrations.Migration):
    dependencies = [("cobranza", "0001_dunning")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
