"""Manager pages: who performs (collector performance) and what works (dunning effectiveness).

Each page reads one selector of ``cobranza.performance.selectors`` and turns its rows into
``exports.Table`` objects; the same Table renders the HTML table, the CSV and the XLSX
(``?export=csv|xlsx&table=<name>``), so what is seen and what is downloaded agree to the cent.
Managers only: everyone else gets a 403.
"""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.http import Http404
from django.shortcuts import render
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from accounts import numbers
from accounts.views import manager_required
from cobranza.exports import INT, MONEY, PERCENT, TEXT, Column, Table, export_format, table_response
from cobranza.performance import selectors
from cobranza.performance.forms import DunningFilterForm, PeriodForm
from cobranza.performance.selectors import FORMULAS


def _filter_errors(request, form) -> None:
    if form.is_bound and not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.warning(request, _("%(error)s Se muestran los últimos 30 días.") % {"error": error})


def _period_label(start: dt.date, end: dt.date) -> str:
    return _("%(start)s al %(end)s") % {
        "start": date_format(start, "SHORT_DATE_FORMAT"),
        "end": date_format(end, "SHORT_DATE_FORMAT"),
    }


def _notes(filters: dict, *keys: str) -> list[str]:
    notes = [
        _("Periodo: %(period)s. Importes en %(currency)s.")
        % {"period": _period_label(filters["start"], filters["end"]), "currency": filters["currency"]}
    ]
    notes += [str(FORMULAS[key]) for key in keys]
    return notes


def _shortcuts(today: dt.date) -> list[tuple[str, dt.date, dt.date]]:
    first_of_month = today.replace(day=1)
    last_month_end = first_of_month - dt.timedelta(days=1)
    return [
        (_("Últimos 7 días"), today - dt.timedelta(days=6), today),
        (_("Últimos 30 días"), today - dt.timedelta(days=29), today),
        (_("Últimos 90 días"), today - dt.timedelta(days=89), today),
        (_("Este mes"), first_of_month, today),
        (_("Mes anterior"), last_month_end.replace(day=1), last_month_end),
    ]


def _html(table: Table, name: str, formulas: dict[str, str]) -> dict:
    """The table as the template draws it: headers with their formula (shown on hover) and
    cells with the raw value beside the formatted one."""
    headers = [
        {"key": c.key, "label": c.label, "kind": c.kind, "formula": formulas.get(c.key, "")} for c in table.columns
    ]
    rows = []
    for row in table.rows:
        cells = [
            {
                "key": c.key,
                "kind": c.kind,
                "value": table.value(row, c),
                "currency": row.get(c.currency_key, ""),
            }
            for c in table.columns
        ]
        rows.append({"cells": cells, "total": row.get("_total", False)})
    return {"name": name, "title": table.title, "headers": headers, "rows": rows, "notes": table.notes}


def _respond_export(request, tables: dict[str, Table], filename: str, filters: dict):
    fmt = export_format(request)
    if fmt is None:
        return None
    name = request.GET.get("table", "")
    if name not in tables:
        raise Http404(_("No existe esa tabla."))
    suffix = f"{filters['start']:%Y%m%d}-{filters['end']:%Y%m%d}-{filters['currency']}"
    return table_response(tables[name], filename=f"{filename}-{name}-{suffix}", fmt=fmt)


# --- collector performance ---------------------------------------------------------------------

COLLECTOR_FORMULAS = {
    "collected": FORMULAS["collected"],
    "contacts": FORMULAS["contacts"],
    "promises_made": FORMULAS["promises_made"],
    "promises_kept": FORMULAS["promise_kept_rate"],
    "promises_judged": FORMULAS["promise_kept_rate"],
    "promise_kept_rate": FORMULAS["promise_kept_rate"],
    "tasks_due": FORMULAS["completion"],
    "tasks_done": FORMULAS["completion"],
    "completion_rate": FORMULAS["completion"],
}


def collector_table(data: selectors.CollectorPerformance, filters: dict) -> Table:
    rows = [row.as_dict() for row in data.rows]
    if data.unassigned_collected:
        rows.append(
            {
                "collector": _("Clientes sin gestor asignado"),
                "currency": data.currency,
                "collected": data.unassigned_collected,
            }
        )
    total = data.total.as_dict()
    total.update(collector=_("Total"), collected=data.collected_all, _total=True)
    rows.append(total)
    return Table(
        title=_("Desempeño por gestor"),
        columns=[
            Column("collector", _("Gestor"), TEXT),
            Column("collected", _("Cobrado"), MONEY),
            Column("contacts", _("Contactos"), INT),
            Column("promises_made", _("Promesas hechas"), INT),
            Column("promises_kept", _("Promesas cumplidas"), INT),
            Column("promises_judged", _("Promesas evaluadas"), INT),
            Column("promise_kept_rate", _("% promesas cumplidas"), PERCENT),
            Column("tasks_due", _("Tareas con fecha en el periodo"), INT),
            Column("tasks_done", _("Tareas hechas"), INT),
            Column("completion_rate", _("% cumplimiento de la agenda"), PERCENT),
        ],
        rows=rows,
        notes=_notes(filters, "collected", "contacts", "promises_made", "promise_kept_rate", "completion"),
    )


def _collector_chart(data: selectors.CollectorPerformance) -> dict:
    return {
        "type": "bar",
        "labels": [row.name for row in data.rows],
        "currency": data.currency,
        "numbers": numbers.js_config(data.currency),
        "datasets": [
            {
                "label": _("Cobrado (%(currency)s)") % {"currency": data.currency},
                "data": [str(row.collected) for row in data.rows],
                "axis": "money",
            },
            {
                "label": _("% promesas cumplidas"),
                "data": [None if row.promise_kept_rate is None else str(row.promise_kept_rate) for row in data.rows],
                "axis": "percent",
                "type": "line",
            },
            {
                "label": _("% cumplimiento de la agenda"),
                "data": [None if row.completion_rate is None else str(row.completion_rate) for row in data.rows],
                "axis": "percent",
                "type": "line",
            },
        ],
    }


@manager_required
@require_GET
def collector_performance(request):
    form = PeriodForm(request.GET or None)
    filters = form.filters()
    data = selectors.collector_performance(**filters)
    tables = {"collectors": collector_table(data, filters)}
    if (response := _respond_export(request, tables, "desempeno", filters)) is not None:
        return response
    _filter_errors(request, form)
    return render(
        request,
        "cobranza/performance/collectors.html",
        {
            "form": form,
            "filters": filters,
            "data": data,
            "period_label": _period_label(filters["start"], filters["end"]),
            "table": _html(tables["collectors"], "collectors", COLLECTOR_FORMULAS),
            "chart": _collector_chart(data),
            "formulas": [
                (_("Cobrado"), FORMULAS["collected"]),
                (_("Contactos"), FORMULAS["contacts"]),
                (_("Promesas hechas"), FORMULAS["promises_made"]),
                (_("% promesas cumplidas"), FORMULAS["promise_kept_rate"]),
                (_("% cumplimiento de la agenda"), FORMULAS["completion"]),
            ],
            "shortcuts": _shortcuts(form.today),
        },
    )


# --- dunning effectiveness ---------------------------------------------------------------------

STEP_FORMULAS = {
    "notices": FORMULAS["notices"],
    "sent": FORMULAS["notices"],
    "failed": FORMULAS["notices"],
    "skipped": FORMULAS["notices"],
    "deferred": FORMULAS["notices"],
    "cancelled": FORMULAS["notices"],
    "pending": FORMULAS["notices"],
    "delivered": FORMULAS["delivered"],
    "listed_7": FORMULAS["paid_7"],
    "paid_7": FORMULAS["paid_7"],
    "share_7": FORMULAS["paid_7"],
    "listed_14": FORMULAS["paid_14"],
    "paid_14": FORMULAS["paid_14"],
    "share_14": FORMULAS["paid_14"],
}
GROUP_FORMULAS = {
    "listed_14": FORMULAS["paid_14"],
    "paid_14": FORMULAS["paid_14"],
    "share_14": FORMULAS["paid_14"],
    "sent_notices": FORMULAS["channel_groups"],
}


def step_table(data: selectors.DunningEffectiveness, filters: dict) -> Table:
    rows = [row.as_dict() for row in data.steps]
    total = data.total.as_dict()
    total.update(policy=_("Total"), step="", channel="", _total=True)
    rows.append(total)
    return Table(
        title=_("Efectividad por política y paso"),
        columns=[
            Column("policy", _("Política"), TEXT),
            Column("step", _("Paso"), TEXT),
            Column("channel", _("Canal"), TEXT),
            Column("notices", _("Avisos"), INT),
            Column("sent", _("Enviados"), INT),
            Column("delivered", _("Entregados"), INT),
            Column("failed", _("Fallidos"), INT),
            Column("skipped", _("Omitidos"), INT),
            Column("deferred", _("Aplazados"), INT),
            Column("cancelled", _("Cancelados"), INT),
            Column("pending", _("Pendientes"), INT),
            Column("listed", _("Saldo listado (enviados)"), MONEY),
            Column("listed_7", _("Saldo listado, ventana de 7 días cerrada"), MONEY),
            Column("paid_7", _("Pagado en 7 días"), MONEY),
            Column("share_7", _("% pagado en 7 días"), PERCENT),
            Column("listed_14", _("Saldo listado, ventana de 14 días cerrada"), MONEY),
            Column("paid_14", _("Pagado en 14 días"), MONEY),
            Column("share_14", _("% pagado en 14 días"), PERCENT),
        ],
        rows=rows,
        notes=_notes(filters, "notices", "delivered", "paid_7", "paid_14"),
    )


def _group_table(rows: list[selectors.ChannelRow], filters: dict, *, title: str, group_label: str) -> Table:
    return Table(
        title=title,
        columns=[
            Column("channel", _("Canal"), TEXT),
            Column("group", group_label, TEXT),
            Column("sent_notices", _("Avisos enviados"), INT),
            Column("listed_14", _("Saldo listado, ventana de 14 días cerrada"), MONEY),
            Column("paid_14", _("Pagado en 14 días"), MONEY),
            Column("share_14", _("% pagado en 14 días"), PERCENT),
        ],
        rows=[row.as_dict() for row in rows],
        notes=_notes(filters, "channel_groups", "paid_14"),
    )


def dunning_tables(data: selectors.DunningEffectiveness, filters: dict) -> dict[str, Table]:
    return {
        "steps": step_table(data, filters),
        "segments": _group_table(
            data.by_segment, filters, title=_("Qué canal funciona por segmento"), group_label=_("Segmento")
        ),
        "profiles": _group_table(
            data.by_profile,
            filters,
            title=_("Qué canal funciona por perfil de morosidad"),
            group_label=_("Perfil de morosidad"),
        ),
    }


def _dunning_chart(data: selectors.DunningEffectiveness) -> dict:
    shown = [row for row in data.steps if row.sent or row.money.listed]
    return {
        "type": "bar",
        "labels": [f"{row.policy} · {row.position}. {row.step}" for row in shown],
        "currency": data.currency,
        "numbers": numbers.js_config(data.currency),
        "datasets": [
            {
                "label": _("% pagado en 7 días"),
                "data": [None if row.money.share_7 is None else str(row.money.share_7) for row in shown],
                "axis": "percent",
            },
            {
                "label": _("% pagado en 14 días"),
                "data": [None if row.money.share_14 is None else str(row.money.share_14) for row in shown],
                "axis": "percent",
            },
        ],
    }


@manager_required
@require_GET
def dunning_effectiveness(request):
    form = DunningFilterForm(request.GET or None)
    filters = form.filters()
    data = selectors.dunning_effectiveness(today=form.today, **filters)
    tables = dunning_tables(data, filters)
    if (response := _respond_export(request, tables, "efectividad", filters)) is not None:
        return response
    _filter_errors(request, form)
    return render(
        request,
        "cobranza/performance/dunning.html",
        {
            "form": form,
            "filters": filters,
            "data": data,
            "period_label": _period_label(filters["start"], filters["end"]),
            "steps_table": _html(tables["steps"], "steps", STEP_FORMULAS),
            "segments_table": _html(tables["segments"], "segments", GROUP_FORMULAS),
            "profiles_table": _html(tables["profiles"], "profiles", GROUP_FORMULAS),
            "chart": _dunning_chart(data),
            "formulas": [
                (_("Avisos y aplazados"), FORMULAS["notices"]),
                (_("Entregados"), FORMULAS["delivered"]),
                (_("% pagado en 7 días"), FORMULAS["paid_7"]),
                (_("% pagado en 14 días"), FORMULAS["paid_14"]),
                (_("Qué canal funciona con quién"), FORMULAS["channel_groups"]),
            ],
            "shortcuts": _shortcuts(form.today),
        },
    )
