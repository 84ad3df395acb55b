"""Report tables and their exports: one ``Table`` feeds the page, the CSV and the XLSX, so what
a manager sees and what they download agree to the cent.

Usage in a view::

    table = Table(
        columns=[Column("segment", _("Segmento")), Column("overdue", _("Vencido"), MONEY)],
        rows=[{"segment": "Regular", "overdue": Decimal("1200.50"), "currency": "MXN"}],
        title=_("Cartera vencida por segmento"),
    )
    if fmt := export_format(request):
        return table_response(table, filename="vencido-por-segmento", fmt=fmt)

Money cells carry their currency in the row (``currency`` key, or ``Column.currency_key``).
CSV: UTF-8 with BOM (Excel opens accents right), ISO dates, a dot as decimal separator, the
currency in its own column. XLSX: native numbers and dates with formats, header row frozen.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from dataclasses import dataclass, field
from decimal import Decimal

from django.http import HttpResponse
from django.utils.text import slugify

from accounts import numbers

TEXT, MONEY, INT, PERCENT, DATE, DECIMAL = "text", "money", "int", "percent", "date", "decimal"
FORMATS = ("csv", "xlsx")


@dataclass
class Column:
    key: str
    label: str
    kind: str = TEXT
    currency_key: str = "currency"  # for MONEY: the row key that holds the ISO code


@dataclass
class Table:
    columns: list[Column]
    rows: list[dict]
    title: str = ""
    notes: list[str] = field(default_factory=list)  # formulas, filters: written under the table

    def value(self, row: dict, column: Column):
        return row.get(column.key)

    def has_money(self) -> bool:
        return any(c.kind == MONEY for c in self.columns)


def export_format(request) -> str | None:
    """``?export=csv`` or ``?export=xlsx`` on a report page; anything else is the page."""
    fmt = request.GET.get("export", "")
    return fmt if fmt in FORMATS else None


# A text cell starting with one of these is run as a formula by spreadsheet programs (CSV
# injection, OWASP): client names, invoice numbers, notes and timeline entries come from users,
# debtors and imports.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n")
_PLAIN_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def inert_cell(value):
    """The one guard every CSV and XLSX writer passes each cell through (report tables here,
    the hand-off case file, any other file a spreadsheet may open): text a spreadsheet would
    run as a formula gets a leading apostrophe, which makes it plain text. Other values, and
    plain numbers written as text ("-3", "-12.50": a spreadsheet reads a number, nothing
    runs), are returned unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def _csv_cell(value, column: Column) -> str:
    if value is None:
        return ""
    if column.kind in (MONEY, DECIMAL, PERCENT) and isinstance(value, int | float | Decimal):
        return f"{Decimal(value):f}"
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _csv_headers(table: Table) -> list[tuple[str, Column | None]]:
    """Each money column is followed by its currency (the amount alone would be ambiguous)."""
    headers: list[tuple[str, Column | None]] = []
    for column in table.columns:
        headers.append((str(column.label), column))
        if column.kind == MONEY:
            headers.append((f"{column.label} (moneda)", None))
    return headers


def to_csv(table: Table) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([inert_cell(label) for label, _c in _csv_headers(table)])
    for row in table.rows:
        cells = []
        for column in table.columns:
            cells.append(_csv_cell(table.value(row, column), column))
            if column.kind == MONEY:
                cells.append(row.get(column.currency_key, ""))
        writer.writerow([inert_cell(cell) for cell in cells])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


NUMBER_FORMATS = {kind: numbers.excel_format(kind) for kind in (DECIMAL, INT, PERCENT, DATE)}


def to_xlsx(table: Table) -> bytes:
    # Imported here: openpyxl costs ~0.1 s at start-up of every web and worker process, and
    # only a download needs it.
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    sheet = book.active
    sheet.title = (slugify(str(table.title))[:31] or "datos") if table.title else "datos"
    headers = _csv_headers(table)
    sheet.append([inert_cell(label) for label, _c in headers])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in table.rows:
        values = []
        for column in table.columns:
            value = table.value(row, column)
            if isinstance(value, Decimal):
                value = float(value) if column.kind != MONEY else value
            values.append(value)
            if column.kind == MONEY:
                values.append(row.get(column.currency_key, ""))
        # inert_cell also keeps openpyxl from storing text that starts with "=" as a live formula.
        sheet.append([inert_cell(value) for value in values])
    for index, (_label, column) in enumerate(headers, start=1):
        if column is not None and column.kind == MONEY:
            # Each amount with its row's currency, placed as on the pages (docs/domain.md#number-formats).
            cells = sheet.iter_rows(min_row=2, max_row=len(table.rows) + 1, min_col=index, max_col=index)
            for row, (cell,) in zip(table.rows, cells, strict=True):
                cell.number_format = numbers.excel_format(MONEY, row.get(column.currency_key, ""))
        elif column is not None and column.kind in NUMBER_FORMATS:
            for (cell,) in sheet.iter_rows(min_row=2, min_col=index, max_col=index):
                cell.number_format = NUMBER_FORMATS[column.kind]
        width = max(
            len(str(_label)), *(len(str(c.value or "")) for (c,) in sheet.iter_rows(min_col=index, max_col=index))
        )
        sheet.column_dimensions[sheet.cell(row=1, column=index).column_letter].width = min(width + 2, 60)
    sheet.freeze_panes = "A2"
    if table.notes:
        sheet.append([])
        for note in table.notes:
            sheet.append([inert_cell(str(note))])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def table_response(table: Table, *, filename: str, fmt: str) -> HttpResponse:
    body = to_csv(table) if fmt == "csv" else to_xlsx(table)
    response = HttpResponse(body, content_type=CONTENT_TYPES[fmt])
    response["Content-Disposition"] = f'attachment; filename="{slugify(filename) or "reporte"}.{fmt}"'
    response["Cache-Control"] = "private, no-store"
    return response
