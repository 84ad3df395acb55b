"""Replay the cash forecast over history (docs/domain.md#cash-forecast): stand at each date,
forecast from the ledger as it was, and compare week by week with the money that came in and
with the naive forecast (everything paid on its due date)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from accounts import clock
from cobranza.dashboard import metrics
from cobranza.forecast import selectors


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"not a YYYY-MM-DD date: {value!r}") from exc


class Command(BaseCommand):
    help = (
        "Backtest the cash forecast: for each stand date, the forecast from the ledger as it was "
        "then against the money applied to the invoices open then, and the naive forecast."
    )

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="start", help="first stand date (default: a year before --to)")
        parser.add_argument("--to", dest="end", help="last stand date (default: today − weeks × 7 − 1)")
        parser.add_argument("--step-weeks", type=int, default=4, help="weeks between stand dates (4)")
        parser.add_argument("--weeks", type=int, default=selectors.WEEKS, help="weeks forecast (8)")
        parser.add_argument("--currency", help="ISO 4217 code (default: the main currency)")
        parser.add_argument("--source", default="", help="what the data is, written into the JSON (for the report)")
        parser.add_argument(
            "--json", dest="json_path", help="also write the figures as JSON to this file (- for stdout)"
        )

    def handle(self, *args, **options):
        weeks, step = options["weeks"], options["step_weeks"]
        if weeks < 1 or step < 1:
            raise CommandError("--weeks and --step-weeks must be at least 1.")
        today = clock.localdate()
        end = _date(options["end"]) if options["end"] else today - dt.timedelta(days=7 * weeks + 1)
        start = _date(options["start"]) if options["start"] else end - dt.timedelta(days=364)
        if start > end:
            raise CommandError("--from must not be after --to.")
        currency = (options["currency"] or metrics.main_currency()).upper()
        f = metrics.Filters.default(today=today, currency=currency)
        result = selectors.backtest(f, selectors.stand_dates(start, end, step), weeks=weeks)
        data = backtest_data(result, weeks=weeks, step_weeks=step, today=today)
        if options["source"]:
            data["source"] = options["source"]
        if options["json_path"] == "-":
            self.stdout.write(json.dumps(data, indent=2))
            return
        self._table(result, data)
        if options["json_path"]:
            Path(options["json_path"]).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
            self.stdout.write(f"written: {options['json_path']}")

    def _table(self, result: selectors.Backtest, data: dict) -> None:
        w = self.stdout.write
        w(f"Cash forecast backtest, {result.currency}: {len(result.stands)} stand dates × {data['weeks']} weeks")
        w(f"{'stand date':<12}{'forecast':>16}{'naive':>16}{'received*':>16}{'all cash':>16}")
        for stand in result.stands:
            totals = {k: sum(row[k] for row in stand.weeks) for k in ("forecast", "naive", "received_open", "received")}
            w(
                f"{stand.as_of.isoformat():<12}{totals['forecast']:>16,.2f}{totals['naive']:>16,.2f}"
                f"{totals['received_open']:>16,.2f}{totals['received']:>16,.2f}"
            )
        w("* received: money applied to the invoices open at the stand date (what both forecasts predict)")
        for label, key in (("vs received*", "received_open"), ("vs all cash", "received")):
            m = data["mae_by_actual"][key]
            w(f"weekly MAE {label}: forecast {m['forecast']}, naive {m['naive']}, improvement {m['improvement_pct']} %")


def backtest_data(result: selectors.Backtest, *, weeks: int, step_weeks: int, today: dt.date) -> dict:
    """The figures as JSON-ready data (the bench report reads this shape)."""

    def text(value):
        return None if value is None else str(value)

    by_actual = {}
    for key in ("received_open", "received"):
        m = result.mae(key)
        by_actual[key] = {
            "forecast": text(m["forecast"]),
            "naive": text(m["naive"]),
            "improvement_pct": text(result.improvement_pct(key)),
        }
    return {
        "currency": result.currency,
        "computed_on": today.isoformat(),
        "weeks": weeks,
        "step_weeks": step_weeks,
        "stand_dates": [s.as_of.isoformat() for s in result.stands],
        "mae": by_actual["received_open"],
        "improvement_pct": by_actual["received_open"]["improvement_pct"],
        "mae_by_actual": by_actual,
        "rows": [
            {"as_of": s.as_of.isoformat(), **{k: text(v) for k, v in row.items()}}
            for s in result.stands
            for row in s.weeks
        ],
    }
