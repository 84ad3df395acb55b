"""The managers' portfolio dashboard: KPI cards with their formulas, aging, 12-month trend,
roll rates and breakdowns by segment, collector and profile, with CSV/XLSX exports of every
table and a printable PDF report.

Every number comes from ``cobranza.dashboard.metrics`` (one definition per metric). Each table is a
``cobranza.exports.Table`` built once here and used three ways: the HTML table, the export
(``?export=csv|xlsx&table=<name>``) and the PDF, so they agree to the cent. Managers and
administrators only (403 for everyone else). A fixed number of queries per page.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.contrib import messages
from django.http import Http404, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_POST

from accounts import clock, numbers
from accounts.selectors import BUCKETS
from accounts.views import manager_required, staff_required
from cobranza.alerts import selectors as alerts
from cobranza.business import selectors as business
from cobranza.dashboard import charts, jobs, metrics, summaries
from cobranza.dashboard.forms import DashboardFilterForm
from cobranza.exports import DATE, DECIMAL, INT, MONEY, PERCENT, Column, Table, export_format, table_response
from cobranza.forecast import selectors as forecast_selectors
from cobranza.models import Profile

# --- the data and its tables ------------------------------------------------------------------------


Dashboard = metrics.Dashboard


def load(f: metrics.Filters) -> tuple[Dashboard, summaries.Freshness]:
    """Everything the page, the exports and the report show: computed live (8 + 3 queries
    and 1 to look for a stored summary) or, on a large portfolio, the stored summary."""
    return summaries.dashboard_load(f)


def _month_label(day: dt.date) -> str:
    return formats.date_format(day, "YEAR_MONTH_FORMAT")


def _short_month(day: dt.date) -> str:
    return formats.date_format(day, "M Y")


def _filters_note(f: metrics.Filters, labels: dict[str, str]) -> str:
    parts = [
        _("Periodo: %(start)s a %(end)s (%(days)s días)")
        % {"start": f.start.isoformat(), "end": f.end.isoformat(), "days": f.days},
        _("Moneda: %(currency)s") % {"currency": f.currency},
    ]
    parts += [f"{label}: {value}" for label, value in labels.items()]
    return " · ".join(parts)


def _display(value, unit: str, currency: str) -> str:
    if value is None:
        return "—"
    if unit == currency:
        return numbers.format_money(value, currency)
    if unit == "%":
        return numbers.format_percent(value)
    if unit == _("días"):
        return numbers.format_days(value)
    return f"{_num(value)} {unit}"


def kpi_rows(k: metrics.Kpis) -> list[dict]:
    """The KPI cards, in order: value, unit, formula (the ``kpis`` table and the cards)."""
    cur = k.filters.currency
    rows = [
        ("receivable", _("Cartera total"), k.receivable, cur, ""),
        ("overdue", _("Cartera vencida"), k.overdue, cur, _("%(pct)s %% de la cartera") % {"pct": _num(k.overdue_pct)}),
        ("dso", _("DSO (días de cobro)"), k.dso, _("días"), ""),
        ("best_dso", _("DSO óptimo"), k.best_dso, _("días"), ""),
        ("add", _("Días promedio de atraso"), k.add, _("días"), ""),
        ("cei", _("Índice de eficacia de cobranza (CEI)"), k.cei, "%", ""),
        ("recovery", _("Tasa de recuperación"), k.recovery_rate, "%", ""),
        (
            "promise_kept",
            _("Promesas cumplidas"),
            k.promise_kept_rate,
            "%",
            _("%(kept)s de %(judged)s evaluadas") % {"kept": k.promises_kept, "judged": k.promises_judged},
        ),
        ("disputed", _("Cartera en disputa"), k.disputed_pct, "%", numbers.format_money(k.closing.disputed, cur)),
        (
            "new_delinquent",
            _("Nuevos vencimientos"),
            k.new_delinquent_amount,
            cur,
            ngettext("%(n)s factura", "%(n)s facturas", k.new_delinquent_count) % {"n": k.new_delinquent_count},
        ),
        ("credit_sales", _("Ventas a crédito del periodo"), k.credit_sales, cur, ""),
        (
            "collected",
            _("Cobrado en el periodo"),
            k.collected,
            cur,
            ngettext("%(n)s pago", "%(n)s pagos", k.payments) % {"n": k.payments},
        ),
    ]
    return [
        {
            "key": key,
            "indicator": label,
            "value": value,
            "unit": unit,
            "detail": detail,
            "formula": str(metrics.FORMULAS[key]),
            "currency": cur,
            "is_money": unit == cur,
            "display": _display(value, unit, cur),
        }
        for key, label, value, unit, detail in rows
    ]


def tables(d: Dashboard, filter_labels: dict[str, str]) -> dict[str, Table]:
    f, k, cur = d.filters, d.kpis, d.filters.currency
    note = _filters_note(f, filter_labels)
    result: dict[str, Table] = {}

    result["kpis"] = Table(
        title=_("Indicadores del periodo"),
        columns=[
            Column("indicator", _("Indicador")),
            Column("value", _("Valor"), DECIMAL),
            Column("unit", _("Unidad")),
            Column("formula", _("Cómo se calcula")),
        ],
        rows=kpi_rows(k),
        notes=[note],
    )

    total = k.closing.total
    result["aging"] = Table(
        title=_("Antigüedad de saldos al %(date)s") % {"date": formats.date_format(f.end, "SHORT_DATE_FORMAT")},
        columns=[
            Column("bucket", _("Tramo")),
            Column("amount", _("Saldo"), MONEY),
            Column("count", _("Facturas"), INT),
            Column("share", _("% de la cartera"), PERCENT),
        ],
        rows=[
            {
                "code": b.code,
                "bucket": str(b.label),
                "amount": amount,
                "count": n,
                "share": metrics._ratio(amount, total),
                "currency": cur,
            }
            for b, amount, n in k.closing.buckets
        ]
        + [
            {
                "code": "total",
                "bucket": _("Total"),
                "amount": total,
                "count": k.closing.count,
                "share": metrics._ratio(total, total),
                "currency": cur,
                "is_total": True,
            }
        ],
        notes=[str(metrics.FORMULAS["aging"]), note],
    )

    result["trend"] = Table(
        title=_("Tendencia de %(n)d meses") % {"n": len(d.trend.points)},
        columns=[
            Column("month_end", _("Cierre de mes"), DATE),
            Column("receivable", _("Cartera"), MONEY),
            Column("overdue", _("Vencido"), MONEY),
            Column("overdue_pct", _("% vencido"), PERCENT),
            Column("credit_sales", _("Ventas a crédito"), MONEY),
            Column("dso", _("DSO (días)"), DECIMAL),
            Column("cei", _("CEI (%)"), PERCENT),
        ],
        rows=[
            {
                "month_end": p.month_end,
                "month": _month_label(p.month_end),
                "receivable": p.receivable,
                "overdue": p.overdue,
                "overdue_pct": metrics._ratio(p.overdue, p.receivable) if p.has_snapshot else None,
                "credit_sales": p.credit_sales,
                "dso": p.dso,
                "cei": p.cei,
                "currency": cur,
                "missing": not p.has_snapshot,
            }
            for p in d.trend.points
        ],
        notes=[str(metrics.FORMULAS["dso"]), str(metrics.FORMULAS["cei"]), note],
    )

    transitions = metrics.ROLL_TRANSITIONS
    result["roll"] = Table(
        title=_("Tasas de traspaso entre tramos"),
        columns=[
            Column("month_end", _("Desde el cierre de"), DATE),
            Column("next_month_end", _("Al cierre de"), DATE),
            *(Column(f"r{i}", f"{a.label} → {b.label}", PERCENT) for i, (a, b) in enumerate(transitions)),
        ],
        rows=[
            {
                "month_end": r.month_end,
                "next_month_end": r.next_month_end,
                "months": f"{_short_month(r.month_end)} → {_short_month(r.next_month_end)}",
                **{f"r{i}": rate for i, rate in enumerate(r.rates)},
            }
            for r in d.trend.roll
        ],
        notes=[str(metrics.FORMULAS["roll"]), note],
    )

    titles = {
        "segment": (_("Por segmento"), _("Segmento")),
        "collector": (_("Por gestor"), _("Gestor")),
        "profile": (_("Por perfil de morosidad"), _("Perfil")),
    }
    for dim, (title, label) in titles.items():
        result[dim] = Table(
            title=title,
            columns=[
                Column("label", label),
                Column("receivable", _("Cartera"), MONEY),
                Column("current", _("Al corriente"), MONEY),
                Column("overdue", _("Vencido"), MONEY),
                Column("overdue_pct", _("% vencido"), PERCENT),
                Column("over_90", _("Más de 90 días"), MONEY),
                Column("credit_sales", _("Ventas a crédito"), MONEY),
                Column("collected", _("Cobrado"), MONEY),
                Column("dso", _("DSO (días)"), DECIMAL),
            ],
            rows=[
                {
                    "key": row.key,
                    "label": row.label,
                    "receivable": row.receivable,
                    "current": row.current,
                    "overdue": row.overdue,
                    "overdue_pct": row.overdue_pct,
                    "over_90": row.over_90,
                    "credit_sales": row.credit_sales,
                    "collected": row.collected,
                    "dso": row.dso,
                    "currency": cur,
                }
                for row in d.breakdowns[dim]
            ],
            notes=[
                str(metrics.FORMULAS["receivable"]),
                str(metrics.FORMULAS["dso"]),
                str(metrics.FORMULAS["collected"]),
                note,
            ],
        )
    result["forecast"] = forecast_table(d, note)
    return result


def forecast_table(d: Dashboard, note: str) -> Table:
    """The cash expected per week (docs/domain.md#cash-forecast), committed and from behaviour."""
    fc, cur = d.forecast, d.filters.currency
    rows = []
    if fc is not None:
        rows = [
            {
                "key": w.number,
                "week": formats.date_format(w.start, "SHORT_DATE_FORMAT"),
                "committed": w.committed,
                "behaviour": w.behaviour,
                "total": w.total,
                "currency": cur,
            }
            for w in fc.weeks
        ] + [
            {
                "key": "total",
                "week": _("Total"),
                "committed": fc.committed,
                "behaviour": fc.behaviour,
                "total": fc.total,
                "currency": cur,
                "is_total": True,
            }
        ]
    return Table(
        title=_("Cobranza esperada (8 semanas)"),
        columns=[
            Column("week", _("Semana del")),
            Column("committed", _("Comprometido"), MONEY),
            Column("behaviour", _("Por comportamiento"), MONEY),
            Column("total", _("Total"), MONEY),
        ],
        rows=rows,
        notes=[
            _("Semanas de 7 días desde el %(date)s, con la cartera al cierre del día anterior.")
            % {"date": formats.date_format(fc.as_of, "SHORT_DATE_FORMAT")}
            if fc is not None
            else "",
            str(forecast_selectors.METHOD),
            note,
        ],
    )


TABLE_NAMES = ("kpis", "aging", "trend", "roll", "segment", "collector", "profile", "forecast")


# --- HTML rendering of a Table ---------------------------------------------------------------------


def _num(value, places: int = 1) -> str:
    if value is None:
        return "—"
    return numbers.format_number(value, places)


def cell(value, column: Column, row: dict) -> str:
    """A table cell as the page shows it (the export keeps the raw value)."""
    if value is None or value == "":
        return "—"
    if column.kind == MONEY:
        return numbers.format_money(value, row.get(column.currency_key) or "")
    if column.kind == PERCENT:
        return numbers.format_percent(value)
    if column.kind == DECIMAL:
        if row.get("is_money"):
            return numbers.format_money(value, row.get("currency", ""))
        return _num(value, 1)
    if column.kind == INT:
        return _num(value, 0)
    if column.kind == DATE:
        return formats.date_format(value, "SHORT_DATE_FORMAT")
    return str(value)


@dataclass
class RenderedTable:
    name: str
    title: str
    headers: list[tuple[str, bool]]  # (label, numeric)
    rows: list[dict]  # {"cells": [(text, numeric)], "key": str, "total": bool}
    notes: list[str]
    csv_url: str
    xlsx_url: str


def render_table(name: str, table: Table, query: str) -> RenderedTable:
    numeric = {MONEY, PERCENT, DECIMAL, INT}
    base = f"?{query}&" if query else "?"
    return RenderedTable(
        name=name,
        title=str(table.title),
        headers=[(str(c.label), c.kind in numeric) for c in table.columns],
        rows=[
            {
                "cells": [(cell(table.value(r, c), c, r), c.kind in numeric) for c in table.columns],
                "key": r.get("code") or r.get("key") or "",
                "total": r.get("is_total", False),
            }
            for r in table.rows
        ],
        notes=[str(n) for n in table.notes],
        csv_url=f"{base}export=csv&table={name}",
        xlsx_url=f"{base}export=xlsx&table={name}",
    )


# --- the pages -------------------------------------------------------------------------------------------


def _filter_labels(form: DashboardFilterForm, f: metrics.Filters) -> dict[str, str]:
    labels = {}
    if f.segment:
        segment = form.cleaned_data.get("segment")
        labels[str(form.fields["segment"].label)] = str(segment)
    if f.collector:
        choices = dict(form.fields["collector"].choices)
        labels[str(form.fields["collector"].label)] = str(choices.get(str(f.collector), f.collector))
    if f.profile:
        labels[str(form.fields["profile"].label)] = str(Profile(f.profile).label)
    return labels


def _query(request) -> str:
    params = request.GET.copy()
    for key in ("export", "table"):
        params.pop(key, None)
    return params.urlencode()


def chart_data(d: Dashboard) -> dict:
    """What static/js/dashboard.js draws (the same numbers as the tables beside the charts)."""

    def num(value):
        return None if value is None else float(value)

    fc_weeks = d.forecast.weeks if d.forecast is not None else []

    return {
        "currency": d.filters.currency,
        "numbers": numbers.js_config(d.filters.currency),
        "labels": {
            "amount": _("Saldo"),
            "receivable": _("Cartera"),
            "overdue": _("Vencido"),
            "dso": _("DSO (días)"),
            "cei": _("CEI (%)"),
            "days": _("días"),
        },
        "aging": {
            "codes": [b.code for b, _a, _n in d.kpis.closing.buckets],
            "labels": [str(b.label) for b, _a, _n in d.kpis.closing.buckets],
            "amounts": [num(a) for _b, a, _n in d.kpis.closing.buckets],
            "counts": [n for _b, _a, n in d.kpis.closing.buckets],
        },
        "roll": {
            "labels": [f"{_short_month(r.month_end)} → {_short_month(r.next_month_end)}" for r in d.trend.roll],
            "series": [f"{a.label} → {b.label}" for a, b in metrics.ROLL_TRANSITIONS],
            "rates": [[num(r.rates[i]) for r in d.trend.roll] for i in range(len(metrics.ROLL_TRANSITIONS))],
            "percent": _("Tasa de traspaso (%)"),
        },
        "forecast": {
            "labels": [formats.date_format(w.start, "SHORT_DATE_FORMAT") for w in fc_weeks],
            "committed": [num(w.committed) for w in fc_weeks],
            "behaviour": [num(w.behaviour) for w in fc_weeks],
            "committed_label": _("Comprometido"),
            "behaviour_label": _("Por comportamiento"),
        },
        "trend": {
            "labels": [_short_month(p.month_end) for p in d.trend.points],
            "receivable": [num(p.receivable) for p in d.trend.points],
            "overdue": [num(p.overdue) for p in d.trend.points],
            "dso": [num(p.dso) for p in d.trend.points],
            "cei": [num(p.cei) for p in d.trend.points],
        },
    }


@staff_required
@manager_required
@require_GET
def dashboard(request):
    form = DashboardFilterForm(request.GET)
    f = form.filters()
    d, freshness = load(f)
    all_tables = tables(d, _filter_labels(form, f))
    if fmt := export_format(request):
        name = request.GET.get("table", "kpis")
        if name not in all_tables:
            raise Http404(_("No existe esa tabla."))
        filename = f"tablero-{name}-{f.currency}-{f.start:%Y%m%d}-{f.end:%Y%m%d}"
        return table_response(all_tables[name], filename=filename, fmt=fmt)
    query = _query(request)
    rendered = {name: render_table(name, table, query) for name, table in all_tables.items()}
    return render(
        request,
        "cobranza/dashboard/dashboard.html",
        {
            "form": form,
            "f": f,
            "k": d.kpis,
            "cards": kpi_rows(d.kpis),
            "trend": d.trend,
            "tables": rendered,
            "chart_data": chart_data(d),
            "roll_formula": metrics.FORMULAS["roll"],
            "forecast": d.forecast,
            "query": query,
            "buckets": BUCKETS,
            "snapshot_months": metrics.trend_months(f) + 1,
            "trend_months": len(d.trend.points),
            "today": clock.localdate(),
            "alert_summary": alerts.alert_summary(request.user),
            "freshness": freshness,
        },
    )


@staff_required
@manager_required
@require_GET
def dashboard_report(request):
    """The portfolio report as a printable PDF (WeasyPrint), with the page's filters."""
    from weasyprint import HTML  # imported here: loading pango costs ~0.3 s at start-up

    form = DashboardFilterForm(request.GET)
    f = form.filters()
    d, freshness = load(f)
    labels = _filter_labels(form, f)
    all_tables = tables(d, labels)
    profile = business.current()
    html = render_to_string(
        "cobranza/dashboard/report.html",
        {
            "f": f,
            "k": d.kpis,
            "cards": kpi_rows(d.kpis),
            "trend": d.trend,
            "tables": {name: render_table(name, t, "") for name, t in all_tables.items()},
            "filters_note": _filters_note(f, labels),
            "generated_at": timezone.localtime(),
            "freshness": freshness,
            "language": translation.get_language(),
            # The same figures as the page's charts, drawn as SVG; the business's logo embedded.
            "charts": charts.report_charts(chart_data(d)),
            "business": profile,
            "logo_file": business.logo_file_uri(profile),
        },
        request=request,
    )
    pdf = HTML(string=html, base_url=request.build_absolute_uri("/")).write_pdf()
    response = HttpResponse(pdf, content_type="application/pdf")
    filename = f"informe-cartera-{f.currency}-{f.start:%Y%m%d}-{f.end:%Y%m%d}.pdf"
    response["Content-Disposition"] = f'inline; filename="{filename}"'
    response["Cache-Control"] = "private, no-store"
    return response


@staff_required
@manager_required
@require_POST
def dashboard_snapshots(request):
    """Take the month-end aging snapshots the trend and roll rates read (the monthly job does
    it too; this fills the past months at once). Idempotent."""
    # The closes the trend of the page's filters reads (its months and the opening of the first).
    query = request.POST.get("query", "")
    f = DashboardFilterForm(QueryDict(query if "\n" not in query else "")).filters()
    filled = jobs.snapshot_months(metrics.trend_month_ends(f))
    summaries.summaries_forget()  # the trend just changed: no stored figures without it
    messages.success(
        request,
        _("Fotos de cierre actualizadas: %(months)s meses, %(rows)s filas.")
        % {"months": len(filled), "rows": sum(filled.values())},
    )
    url = reverse("cobranza:dashboard")
    return redirect(f"{url}?{query}" if query and "\n" not in query else url)


@staff_required
@manager_required
@require_POST
def dashboard_refresh(request):
    """Recompute the stored figures of the filters on screen now (large portfolios, where the
    page shows a stored summary)."""
    query = request.POST.get("query", "")
    if "\n" in query:
        query = ""
    form = DashboardFilterForm(QueryDict(query))
    freshness = summaries.summary_refresh(form.filters())
    messages.success(
        request,
        _("Cifras recalculadas en %(seconds)s s.")
        % {"seconds": numbers.format_number(freshness.duration_ms / 1000, 1)},
    )
    url = reverse("cobranza:dashboard")
    return redirect(f"{url}?{query}" if query else url)
