# ruff: noqa: S608 - table names from model metadata and rule fragments; values are parameters
"""The cash-collection forecast (docs/domain.md#cash-forecast) and its backtest.

Standing at the start of ``as_of`` (the ledger as it was at the close of the day before), the
forecast says how much money is expected in each of the next ``weeks`` seven-day windows
(week 1 = ``as_of`` … ``as_of + 6``), per currency, in two parts:

- **committed**: the open promises, extensions and payment-plan installments due in the window,
  on their date (one already past but not yet judged: the first week), weighted by the client's
  promise-kept rate; their invoices are not counted again;
- **behaviour**: every other invoice in the receivables (not in dispute), on its due date plus
  the client's typical delay, times the chance of collecting it at that age.

Every number is read "as of": receivables at a date (``metrics._cube_sql``), settled history and
promise outcomes before the day, commitments as they stood then. One statement per forecast;
the backtest adds one per stand date for the naive forecast and the money actually received.

The settlement offsets are the costly part (every invoice settled in 24 months). The nightly
profile job keeps them for its day (``SettlementOffset``, ``SettlementNorm``, see
``forecast.jobs``): standing on that day the statement reads one row per client instead, and
computes from the ledger only the clients the job has no figures for; standing on any other day
(the backtest's past dates, or before the job ran) it computes everything from the ledger.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.db import connection
from django.utils.translation import gettext_lazy as _

from accounts import rules as ledger
from accounts.models import ZERO, Client, Payment, PaymentAllocation
from cobranza import rules
from cobranza.dashboard import metrics
from cobranza.forecast.data import Forecast, Week
from cobranza.models import (
    Commitment,
    CommitmentStatus,
    Installment,
    InstallmentStatus,
    SettlementNorm,
    SettlementOffset,
)

CENT = Decimal("0.01")

WEEKS = 8
# Settled invoices a client needs before its own delay is trusted; below it, its segment's.
MIN_SETTLED = 3
HISTORY_DAYS = 730  # the last 24 months of settled invoices
# A forecast reads the offsets the nightly profile job kept on its stand date or on one of the
# days before it, up to this many (docs/domain.md#cash-forecast).
KEPT_DAYS = 3
PROMISE_HISTORY_DAYS = 730
# The client's promise-kept rate is smoothed towards the portfolio's with this many "virtual"
# promises, so one kept (or broken) promise does not make a client certain (or hopeless).
PROMISE_PRIOR = 2
PROMISE_DEFAULT_RATE = Decimal("0.5")  # a portfolio without judged promises
# An invoice already later than its client's usual day: its expected money is spread evenly over
# this many first weeks (backtested on the demo data: 2 to 8 weeks change the error by ±3 %).
OVERDUE_SPREAD_WEEKS = 4


# A settled invoice's settlement offset (negative: paid early), and the median of a set of them.
OFFSET_DAYS = ledger.days_between_sql("s.settled_on", "s.due_date")
MEDIAN = "percentile_cont(0.5) WITHIN GROUP (ORDER BY days)"


# "¿Cómo se calcula?", as the dashboard card and the API say it (docs/domain.md#cash-forecast).
METHOD = _(
    "Cobranza esperada por semana (semanas de 7 días desde la fecha de cálculo), con la cartera "
    "al cierre del día anterior. Comprometido: promesas, prórrogas y cuotas de planes vigentes, en "
    "su fecha (las vencidas aún sin evaluar, en la primera semana), por la tasa de promesas "
    "cumplidas del cliente; sus facturas no se cuentan otra vez. Por comportamiento: cada otra "
    "factura pendiente, en su vencimiento más los días que el cliente suele tardar en liquidar "
    "(mediana de sus facturas liquidadas en 24 meses; la de su segmento o la de la cartera si "
    "tiene menos de 3), por la probabilidad de cobrarla a esa antigüedad (1 − el peso de pérdida "
    "del importe en riesgo). Lo que ya pasó de su fecha habitual se reparte en las 4 primeras "
    "semanas. Las facturas en disputa no se cuentan."
)


def overdue_shares(weeks: int) -> list[Decimal]:
    """The share of an invoice already past its expected day that each first week gets: even
    over ``OVERDUE_SPREAD_WEEKS`` (or the horizon, if shorter)."""
    n = min(OVERDUE_SPREAD_WEEKS, weeks)
    return [Decimal(1) / n] * n


def week_windows(as_of: dt.date, weeks: int) -> list[tuple[dt.date, dt.date]]:
    return [(as_of + dt.timedelta(days=7 * k), as_of + dt.timedelta(days=7 * k + 6)) for k in range(weeks)]


def _cents(value) -> Decimal:
    return Decimal(value or ZERO).quantize(CENT, rounding=ROUND_HALF_UP)


def _tables() -> dict[str, str]:
    through = Commitment.invoices.through._meta
    return {
        "client": Client._meta.db_table,
        "commitment": Commitment._meta.db_table,
        "installment": Installment._meta.db_table,
        "cm_invoice": through.db_table,
        "cm_fk": through.get_field("commitment").column,
        "cm_inv": through.get_field("invoice").column,
        "payment": Payment._meta.db_table,
        "allocation": PaymentAllocation._meta.db_table,
        "offset": SettlementOffset._meta.db_table,
        "norm": SettlementNorm._meta.db_table,
    }


def _receivables(f: metrics.Filters | None, as_of: dt.date) -> tuple[str, list]:
    """The receivables at the close of the day before ``as_of``, one row per invoice
    (docs/domain.md#receivables): ``invoice, client, currency, due_date, disputed, amount``."""
    return metrics._cube_sql(f, as_of - dt.timedelta(days=1), dims=("invoice", "client", "currency", "due_date"))


def expected_offset_sql(own: str, segment: str, portfolio: str) -> str:
    """The whole days after its due date an invoice is expected (docs/domain.md#cash-forecast):
    the client's median settlement offset with ``MIN_SETTLED`` or more settled invoices, else its
    segment's (with as many), else the portfolio's, else 0. Each argument names a relation with
    columns ``n`` (settled invoices) and ``med`` (their median offset)."""
    return f"""CAST(ROUND(CAST(CASE WHEN {own}.n >= {MIN_SETTLED} THEN {own}.med
                               WHEN {segment}.n >= {MIN_SETTLED} THEN {segment}.med
                               WHEN {portfolio}.n > 0 THEN {portfolio}.med ELSE 0 END AS numeric)) AS integer)"""


def settled_history_sql(as_of: dt.date, *, where: str = "") -> tuple[str, list]:
    """The invoices settled in the ``HISTORY_DAYS`` before ``as_of`` (``client_id, due_date,
    settled_on``): each client's settlement behaviour. ``where`` narrows it (``i`` the invoice)."""
    since = as_of - dt.timedelta(days=HISTORY_DAYS)
    sql = ledger.settled_invoices_sql(
        where=f"AND p.received_on >= %s {where}", having="MAX(p.received_on) >= %s AND MAX(p.received_on) < %s"
    )
    return sql, [since, since, as_of]


def forecast_sql(f: metrics.Filters | None, as_of: dt.date, weeks: int = WEEKS) -> tuple[str, list]:
    """One statement: rows ``currency, week (0-based), committed, behaviour``."""
    t = _tables()
    recv_sql, recv_params = _receivables(f, as_of)
    horizon = as_of + dt.timedelta(days=7 * weeks)  # first day after the last window
    settled, settled_params = settled_history_sql(as_of)
    # One client's own figures when the profile job has none for the day (a client added since).
    own, own_params = settled_history_sql(as_of, where="AND i.client_id = m.client")
    # The chance of collecting an invoice: 1 − the loss weight of its age when it is expected
    # (docs/domain.md#amount-at-risk). ``age_due`` is the due date that, aged on ``as_of``, has
    # that age: due − (expected − as_of) for an expected day to come, the due date itself else.
    loss_sql, loss_params = rules.loss_weight_sql(as_of, "b.age_due")
    shares = overdue_shares(weeks)
    spread_values = ", ".join(f"({k}, {share})" for k, share in enumerate(shares))
    sql = f"""
    WITH recv AS ({recv_sql}),
    -- The offsets the profile job kept for the stand date, or for the latest day of the few
    -- before it (after midnight the nightly run has not been yet: docs/domain.md#cash-forecast).
    kept AS (
        SELECT MAX(as_of) AS day FROM {t["norm"]}
        WHERE segment_id IS NULL AND as_of <= %s AND as_of > %s),
    stored AS (SELECT day IS NOT NULL AS ok FROM kept),
    judged AS (
        SELECT m.client_id, SUM(CASE WHEN {rules.promise_kept_sql("m")} THEN 1 ELSE 0 END) AS kept,
               COUNT(*) AS judged
        FROM {t["commitment"]} m
        WHERE {rules.promise_judged_sql("m")} AND m.resolved_on >= %s AND m.resolved_on < %s
        GROUP BY m.client_id),
    prior AS (
        SELECT COALESCE(SUM(kept)::numeric / NULLIF(SUM(judged), 0), %s) AS rate FROM judged),
    open_cm AS (
        SELECT m.id, m.client_id, m.currency, m.status FROM {t["commitment"]} m
        WHERE m.made_on < %s AND (m.status = %s OR m.resolved_on >= %s)),
    cm_invoice AS (
        SELECT DISTINCT ci.{t["cm_fk"]} AS commitment_id, ci.{t["cm_inv"]} AS invoice_id
        FROM {t["cm_invoice"]} ci JOIN open_cm m ON m.id = ci.{t["cm_fk"]}),
    cm_balance AS (
        SELECT ci.commitment_id, SUM(r.amount) AS balance
        FROM cm_invoice ci JOIN recv r ON r.invoice = ci.invoice_id GROUP BY ci.commitment_id),
    pending AS (
        SELECT k.commitment_id, k.due_on, k.amount
        FROM {t["installment"]} k JOIN open_cm m ON m.id = k.commitment_id
        WHERE (k.judged_on IS NULL OR k.judged_on >= %s)
          AND NOT (k.status = %s AND m.status = %s)),
    pending_total AS (SELECT commitment_id, SUM(amount) AS total FROM pending GROUP BY commitment_id),
    committed AS (
        SELECT m.currency,
               GREATEST(k.due_on, %s) AS day,
               k.amount * LEAST(1, b.balance / pt.total)
                 * (COALESCE(j.kept, 0) + {PROMISE_PRIOR} * pr.rate) / (COALESCE(j.judged, 0) + {PROMISE_PRIOR})
                 AS amount
        FROM pending k
        JOIN open_cm m ON m.id = k.commitment_id
        JOIN cm_balance b ON b.commitment_id = k.commitment_id
        JOIN pending_total pt ON pt.commitment_id = k.commitment_id
        LEFT JOIN judged j ON j.client_id = m.client_id
        CROSS JOIN prior pr
        WHERE k.due_on < %s),
    -- Each invoice with its client's stored offset in days, when the profile job kept it for the day.
    recv_stored AS (
        SELECT r.*, o.days FROM recv r
        LEFT JOIN {t["offset"]} o ON o.client_id = r.client AND o.as_of = (SELECT day FROM kept)
        WHERE r.disputed = 0
          AND NOT EXISTS (SELECT 1 FROM cm_invoice ci JOIN cm_balance cb ON cb.commitment_id = ci.commitment_id
                          JOIN pending_total pt ON pt.commitment_id = ci.commitment_id
                          WHERE ci.invoice_id = r.invoice)),
    settled AS ({settled}),
    delays AS (
        SELECT s.client_id, c.segment_id, {OFFSET_DAYS} AS days
        FROM settled s JOIN {t["client"]} c ON c.id = s.client_id
        WHERE NOT (SELECT ok FROM stored)),
    by_client AS (
        SELECT client_id, COUNT(*) AS n, {MEDIAN} AS med FROM delays GROUP BY client_id
        UNION ALL
        SELECT m.client, x.n, x.med
        FROM (SELECT DISTINCT r.client FROM recv_stored r WHERE r.days IS NULL AND (SELECT ok FROM stored)) m
        CROSS JOIN LATERAL (SELECT COUNT(*) AS n, {MEDIAN} AS med
                            FROM (SELECT {OFFSET_DAYS} AS days FROM ({own}) s) d) x
        WHERE x.n > 0),
    by_segment AS (
        SELECT segment_id, COUNT(*) AS n, {MEDIAN} AS med FROM delays GROUP BY segment_id
        UNION ALL
        SELECT segment_id, settled, median FROM {t["norm"]}
        WHERE segment_id IS NOT NULL AND as_of = (SELECT day FROM kept)),
    portfolio AS (
        SELECT COUNT(*) AS n, {MEDIAN} AS med FROM delays HAVING NOT (SELECT ok FROM stored)
        UNION ALL
        SELECT settled, median FROM {t["norm"]} WHERE segment_id IS NULL AND as_of = (SELECT day FROM kept)),
    behaviour_base AS (
        SELECT r.currency, r.due_date, r.amount, r.due_date + r.days AS expected
        FROM recv_stored r WHERE r.days IS NOT NULL
        UNION ALL
        SELECT r.currency, r.due_date, r.amount, r.due_date + {expected_offset_sql("bc", "bs", "pf")} AS expected
        FROM recv_stored r
        JOIN {t["client"]} c ON c.id = r.client
        LEFT JOIN by_client bc ON bc.client_id = r.client
        LEFT JOIN by_segment bs ON bs.segment_id = c.segment_id
        CROSS JOIN portfolio pf
        WHERE r.days IS NULL),
    behaviour AS (
        SELECT b.currency, b.expected, b.amount * (1 - {loss_sql}) AS amount
        FROM (SELECT bb.*, bb.due_date - GREATEST(bb.expected - %s, 0) AS age_due FROM behaviour_base bb) b),
    flows AS (
        SELECT currency, (day - %s) / 7 AS week, amount AS committed, 0 AS behaviour FROM committed
        UNION ALL
        SELECT currency, (expected - %s) / 7, 0, amount FROM behaviour WHERE expected >= %s AND expected < %s
        UNION ALL
        SELECT b.currency, g.week, 0, b.amount * g.share
        FROM behaviour b CROSS JOIN (VALUES {spread_values}) AS g(week, share) WHERE b.expected < %s)
    SELECT currency, week, SUM(committed) AS committed, SUM(behaviour) AS behaviour
    FROM flows WHERE week >= 0 AND week < {int(weeks)}
    GROUP BY currency, week ORDER BY currency, week
    """
    params = [
        *recv_params,
        as_of,
        as_of - dt.timedelta(days=KEPT_DAYS),  # kept
        as_of - dt.timedelta(days=PROMISE_HISTORY_DAYS),
        as_of,  # judged
        PROMISE_DEFAULT_RATE,
        as_of,
        CommitmentStatus.OPEN.value,
        as_of,  # open_cm
        as_of,
        InstallmentStatus.CANCELLED.value,
        CommitmentStatus.OPEN.value,  # pending
        as_of,
        horizon,  # committed
        *settled_params,
        *own_params,  # by_client
        *loss_params,
        as_of,  # behaviour
        as_of,
        as_of,
        as_of,
        horizon,
        as_of,  # flows
    ]
    return sql, params


def _fetch(sql: str, params: list) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def forecast(as_of: dt.date, *, weeks: int = WEEKS, filters: metrics.Filters | None = None) -> dict[str, Forecast]:
    """``{currency: Forecast}`` standing at the start of ``as_of`` (1 query). ``filters``: the
    dashboard's (its currency and client filters; its period is not used); None: every client
    and currency. A currency with nothing expected is absent."""
    out: dict[str, Forecast] = {}
    windows = week_windows(as_of, weeks)
    for currency, week, committed, behaviour in _fetch(*forecast_sql(filters, as_of, weeks)):
        fc = out.get(currency)
        if fc is None:
            fc = out[currency] = Forecast(
                as_of=as_of, currency=currency, weeks=[Week(k + 1, s, e) for k, (s, e) in enumerate(windows)]
            )
        fc.weeks[week].committed = _cents(committed)
        fc.weeks[week].behaviour = _cents(behaviour)
    return out


def forecast_for(f: metrics.Filters, as_of: dt.date, *, weeks: int = WEEKS) -> Forecast:
    """The forecast in the filters' currency (empty weeks when nothing is expected)."""
    found = forecast(as_of, weeks=weeks, filters=f).get(f.currency)
    if found is None:
        found = Forecast(
            as_of=as_of,
            currency=f.currency,
            weeks=[Week(k + 1, s, e) for k, (s, e) in enumerate(week_windows(as_of, weeks))],
        )
    return found


# --- backtest -------------------------------------------------------------------------------------


def outcome_sql(f: metrics.Filters, as_of: dt.date, weeks: int = WEEKS) -> tuple[str, list]:
    """One statement: per week (0-based), the naive forecast (each invoice of the receivables at
    ``as_of`` paid in full on its due date, overdue ones in the first week), the money received
    and applied to those invoices, and all the money received (docs/domain.md#credit-sales-and-cash-collected:
    credit notes and discounts are not money) in the filters' currency and clients."""
    t = _tables()
    recv_sql, recv_params = _receivables(f, as_of)
    horizon = as_of + dt.timedelta(days=7 * weeks)
    # The money received in the horizon: the dashboard's "collected" (one definition).
    cash_sql, cash_params = (
        metrics._cash_payments(
            metrics.Filters(
                currency=f.currency,
                start=as_of,
                end=horizon - dt.timedelta(days=1),
                segment=f.segment,
                collector=f.collector,
                profile=f.profile,
            )
        )
        .values("id", "received_on", "amount")
        .query.sql_with_params()
    )
    sql = f"""
    WITH recv AS ({recv_sql}),
    cash AS ({cash_sql}),
    flows AS (
        SELECT GREATEST(r.due_date - %s, 0) / 7 AS week, r.amount AS naive, 0 AS received_open, 0 AS received
        FROM recv r
        UNION ALL
        SELECT (p.received_on - %s) / 7, 0, a.amount, 0
        FROM cash p JOIN {t["allocation"]} a ON a.payment_id = p.id JOIN recv r ON r.invoice = a.invoice_id
        UNION ALL
        SELECT (p.received_on - %s) / 7, 0, 0, p.amount FROM cash p)
    SELECT week, SUM(naive), SUM(received_open), SUM(received)
    FROM flows WHERE week < {int(weeks)} GROUP BY week ORDER BY week
    """
    return sql, [*recv_params, *cash_params, as_of, as_of, as_of]


@dataclass
class StandDate:
    as_of: dt.date
    weeks: list[dict]  # week, start, end, forecast, naive, received_open, received


@dataclass
class Backtest:
    currency: str
    stands: list[StandDate]

    def _mae(self, key: str, actual: str) -> Decimal | None:
        errors = [abs(w[key] - w[actual]) for s in self.stands for w in s.weeks]
        if not errors:
            return None
        return _cents(sum(errors, ZERO) / len(errors))

    def mae(self, actual: str = "received_open") -> dict[str, Decimal | None]:
        return {"forecast": self._mae("forecast", actual), "naive": self._mae("naive", actual)}

    def improvement_pct(self, actual: str = "received_open") -> Decimal | None:
        m = self.mae(actual)
        if not m["naive"]:
            return None
        return ((m["naive"] - m["forecast"]) / m["naive"] * 100).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def stand_dates(start: dt.date, end: dt.date, step_weeks: int) -> list[dt.date]:
    days, out = dt.timedelta(weeks=step_weeks), []
    day = start
    while day <= end:
        out.append(day)
        day += days
    return out


def backtest(f: metrics.Filters, dates: list[dt.date], *, weeks: int = WEEKS) -> Backtest:
    """For each stand date: the forecast as of it, the naive one and what was received, week by
    week (2 queries per stand date)."""
    stands = []
    for as_of in dates:
        fc = forecast_for(f, as_of, weeks=weeks)
        rows = {row[0]: row for row in _fetch(*outcome_sql(f, as_of, weeks))}
        out = []
        for w in fc.weeks:
            row = rows.get(w.number - 1, (None, 0, 0, 0))
            out.append(
                {
                    "week": w.number,
                    "start": w.start,
                    "end": w.end,
                    "forecast": w.total,
                    "committed": w.committed,
                    "naive": _cents(row[1]),
                    "received_open": _cents(row[2]),
                    "received": _cents(row[3]),
                }
            )
        stands.append(StandDate(as_of=as_of, weeks=out))
    return Backtest(currency=f.currency, stands=stands)
