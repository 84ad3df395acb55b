"""Portfolio metrics over the API: the dashboard's numbers for integrations (BI tools, the
accounting system). Managers only, like the dashboard.

The filters are validated by the dashboard's own form and the numbers come from the same
functions (``cobranza.dashboard.metrics``) the page, its exports and the PDF report use, so every
surface agrees to the cent. Unlike the page, which shows a bad filter as a field error and
falls back to its default, the API answers a bad filter with a 400 naming the field."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from cobranza.dashboard import metrics
from cobranza.dashboard.forms import DashboardFilterForm
from cobranza.forecast import selectors as forecast_selectors
from cobranza.forecast.forms import ForecastForm

from .permissions import IsManager

FILTER_PARAMETERS = [
    OpenApiParameter("currency", OpenApiTypes.STR, description="ISO 4217; default: the main currency"),
    OpenApiParameter("start", OpenApiTypes.DATE, description="first day of the period; default: last full month"),
    OpenApiParameter("end", OpenApiTypes.DATE, description="last day of the period (not after today)"),
    OpenApiParameter("segment", OpenApiTypes.INT, description="segment id"),
    OpenApiParameter("collector", OpenApiTypes.STR, description='collector (user) id, or "none" for unassigned'),
    OpenApiParameter("profile", OpenApiTypes.STR, description="delinquency profile code"),
]


def _money(**kwargs) -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=18, decimal_places=2, **kwargs)


def _rate(**kwargs) -> serializers.DecimalField:
    """A percentage or a number of days, one decimal; null when its denominator is zero."""
    return serializers.DecimalField(max_digits=12, decimal_places=1, allow_null=True, **kwargs)


class FiltersSerializer(serializers.Serializer):
    currency = serializers.CharField()
    start = serializers.DateField()
    end = serializers.DateField()
    days = serializers.IntegerField()
    segment = serializers.IntegerField(allow_null=True)
    collector = serializers.CharField(allow_null=True)
    profile = serializers.CharField(allow_blank=True)


class AgingBucketSerializer(serializers.Serializer):
    bucket = serializers.CharField(help_text="current, 1_30, 31_60, 61_90, 91_120, 120_plus")
    label = serializers.CharField()
    amount = _money()
    invoices = serializers.IntegerField()


class PortfolioSerializer(serializers.Serializer):
    filters = FiltersSerializer()
    receivable = _money()
    current = _money()
    overdue = _money()
    overdue_pct = _rate()
    disputed = _money()
    disputed_pct = _rate()
    aging = AgingBucketSerializer(many=True)
    opening_receivable = _money()
    opening_overdue = _money()
    credit_sales = _money()
    collected = _money()
    payments = serializers.IntegerField()
    dso = _rate()
    best_dso = _rate()
    average_days_delinquent = _rate()
    cei = _rate()
    recovery_rate = _rate()
    promises_kept = serializers.IntegerField()
    promises_judged = serializers.IntegerField()
    promise_kept_rate = _rate()
    new_delinquent_invoices = serializers.IntegerField()
    new_delinquent_amount = _money()
    formulas = serializers.DictField(child=serializers.CharField())


class TrendPointSerializer(serializers.Serializer):
    month_end = serializers.DateField()
    has_snapshot = serializers.BooleanField()
    receivable = _money(allow_null=True)
    current = _money(allow_null=True)
    overdue = _money(allow_null=True)
    buckets = serializers.DictField(child=_money())
    credit_sales = _money()
    dso = _rate()
    cei = _rate()


class RollRateSerializer(serializers.Serializer):
    month_end = serializers.DateField()
    next_month_end = serializers.DateField()
    rates = serializers.DictField(
        child=_rate(),
        help_text='"1_30->31_60": of the invoices in 1_30 at month_end, the share of their balance that sits '
        "in 31_60 or later at next_month_end, in % (docs/domain.md#roll-rate)",
    )
    bases = serializers.DictField(child=_money(), help_text="each bucket's balance at month_end (the denominator)")
    rolled = serializers.DictField(child=_money(), help_text="what those invoices owe at next_month_end, rolled on")


class TrendSerializer(serializers.Serializer):
    filters = FiltersSerializer()
    points = TrendPointSerializer(many=True)
    roll_rates = RollRateSerializer(many=True)
    computed_at = serializers.DateTimeField(allow_null=True)
    missing_months = serializers.ListField(child=serializers.DateField())


class ForecastWeekSerializer(serializers.Serializer):
    week = serializers.IntegerField(help_text="1 … weeks")
    start = serializers.DateField()
    end = serializers.DateField()
    committed = _money(help_text="from open promises, extensions and plan installments, weighted")
    behaviour = _money(help_text="from the other open invoices and the client's payment habit")
    total = _money()


class ForecastSerializer(serializers.Serializer):
    as_of = serializers.DateField()
    currency = serializers.CharField()
    segment = serializers.IntegerField(allow_null=True)
    collector = serializers.CharField(allow_null=True)
    profile = serializers.CharField(allow_blank=True)
    weeks = ForecastWeekSerializer(many=True)
    committed = _money()
    behaviour = _money()
    total = _money()
    committed_pct = _rate()
    method = serializers.CharField()


FORECAST_PARAMETERS = [
    OpenApiParameter("as_of", OpenApiTypes.DATE, description="the stand date, YYYY-MM-DD; default: today"),
    *(p for p in FILTER_PARAMETERS if p.name not in ("start", "end")),
]


def _filters(request) -> metrics.Filters:
    form = DashboardFilterForm(request.query_params)
    if form.errors:
        raise ValidationError({name: [str(e) for e in errors] for name, errors in form.errors.items()})
    return form.filters()


def _filters_data(f: metrics.Filters) -> dict:
    return {
        "currency": f.currency,
        "start": f.start,
        "end": f.end,
        "days": f.days,
        "segment": f.segment,
        "collector": None if f.collector is None else str(f.collector),
        "profile": f.profile,
    }


def portfolio_data(f: metrics.Filters) -> dict:
    """The KPI set of the period as plain data (the same Kpis the dashboard renders)."""
    k = metrics.kpis(f)
    return {
        "filters": _filters_data(f),
        "receivable": k.receivable,
        "current": k.closing.current,
        "overdue": k.overdue,
        "overdue_pct": k.overdue_pct,
        "disputed": k.closing.disputed,
        "disputed_pct": k.disputed_pct,
        "aging": [
            {"bucket": bucket.code, "label": str(bucket.label), "amount": amount, "invoices": count}
            for bucket, amount, count in k.closing.buckets
        ],
        "opening_receivable": k.opening.total,
        "opening_overdue": k.opening.overdue,
        "credit_sales": k.credit_sales,
        "collected": k.collected,
        "payments": k.payments,
        "dso": k.dso,
        "best_dso": k.best_dso,
        "average_days_delinquent": k.add,
        "cei": k.cei,
        "recovery_rate": k.recovery_rate,
        "promises_kept": k.promises_kept,
        "promises_judged": k.promises_judged,
        "promise_kept_rate": k.promise_kept_rate,
        "new_delinquent_invoices": k.new_delinquent_count,
        "new_delinquent_amount": k.new_delinquent_amount,
        "formulas": {key: str(text) for key, text in metrics.FORMULAS.items()},
    }


def trend_data(f: metrics.Filters) -> dict:
    t = metrics.trend(f, months=metrics.trend_months(f))
    return {
        "filters": _filters_data(f),
        "points": [
            {
                "month_end": p.month_end,
                "has_snapshot": p.has_snapshot,
                "receivable": p.receivable,
                "current": p.current,
                "overdue": p.overdue,
                "buckets": p.buckets,
                "credit_sales": p.credit_sales,
                "dso": p.dso,
                "cei": p.cei,
            }
            for p in t.points
        ],
        "roll_rates": [
            {
                "month_end": row.month_end,
                "next_month_end": row.next_month_end,
                "rates": {
                    f"{a.code}->{b.code}": rate
                    for (a, b), rate in zip(metrics.ROLL_TRANSITIONS, row.rates, strict=True)
                },
                "bases": {
                    f"{a.code}->{b.code}": value
                    for (a, b), value in zip(metrics.ROLL_TRANSITIONS, row.bases, strict=False)
                },
                "rolled": {
                    f"{a.code}->{b.code}": value
                    for (a, b), value in zip(metrics.ROLL_TRANSITIONS, row.rolled, strict=False)
                },
            }
            for row in t.roll
        ],
        "computed_at": t.computed_at,
        "missing_months": t.missing,
    }


class PortfolioMetricsView(APIView):
    """Receivables, aging, DSO, best DSO, average days delinquent, CEI, recovery rate,
    promise-kept rate, disputed share and new delinquencies for a period, with each formula."""

    permission_classes = [IsManager]

    @extend_schema(parameters=FILTER_PARAMETERS, responses={200: PortfolioSerializer}, operation_id="metrics_portfolio")
    def get(self, request):
        return Response(PortfolioSerializer(portfolio_data(_filters(request))).data)


class TrendMetricsView(APIView):
    """Twelve month-ends up to the period's end: receivables, overdue, buckets, DSO, CEI and
    the roll rates between buckets, from the month-end aging snapshots."""

    permission_classes = [IsManager]

    @extend_schema(parameters=FILTER_PARAMETERS, responses={200: TrendSerializer}, operation_id="metrics_trend")
    def get(self, request):
        return Response(TrendSerializer(trend_data(_filters(request))).data)


def forecast_data(f: metrics.Filters, as_of) -> dict:
    fc = forecast_selectors.forecast_for(f, as_of)
    return {
        "as_of": as_of,
        "currency": f.currency,
        "segment": f.segment,
        "collector": None if f.collector is None else str(f.collector),
        "profile": f.profile,
        "weeks": [
            {
                "week": w.number,
                "start": w.start,
                "end": w.end,
                "committed": w.committed,
                "behaviour": w.behaviour,
                "total": w.total,
            }
            for w in fc.weeks
        ],
        "committed": fc.committed,
        "behaviour": fc.behaviour,
        "total": fc.total,
        "committed_pct": fc.committed_pct,
        "method": str(forecast_selectors.METHOD),
    }


class ForecastMetricsView(APIView):
    """Cash expected per week for the next 8 weeks from ``as_of`` (docs/domain.md#cash-forecast),
    in one currency: committed (promises and plans) and expected from each client's habit."""

    permission_classes = [IsManager]

    @extend_schema(parameters=FORECAST_PARAMETERS, responses={200: ForecastSerializer}, operation_id="metrics_forecast")
    def get(self, request):
        form = ForecastForm(request.query_params)
        if form.errors:
            raise ValidationError({name: [str(e) for e in errors] for name, errors in form.errors.items()})
        return Response(ForecastSerializer(forecast_data(form.filters(), form.stand_date())).data)
