"""One Table feeds the page, the CSV and the XLSX: the same numbers in all three."""

import csv
import datetime as dt
import io
from decimal import Decimal

from openpyxl import load_workbook

from accounts import numbers
from cobranza.exports import DATE, INT, MONEY, PERCENT, Column, Table, to_csv, to_xlsx

TABLE = Table(
    title="Cartera por segmento",
    columns=[
        Column("segment", "Segmento"),
        Column("clients", "Clientes", INT),
        Column("overdue", "Vencido", MONEY),
        Column("share", "% vencido", PERCENT),
        Column("as_of", "Al", DATE),
    ],
    rows=[
        {"segment": "Cuenta clave", "clients": 3, "overdue": Decimal("12500.10"), "currency": "MXN",
         "share": Decimal("12.5"), "as_of": dt.date(2026, 11, 30)},
        {"segment": "Régimen ñ", "clients": 1, "overdue": Decimal("0.01"), "currency": "EUR",
         "share": None, "as_of": dt.date(2026, 11, 30)},
    ],
    notes=["Vencido = saldo de facturas con vencimiento anterior a hoy."],
)  # fmt: skip


def test_csv_has_a_bom_iso_dates_dot_decimals_and_the_currency_beside_each_amount():
    raw = to_csv(TABLE)
    assert raw.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0] == ["Segmento", "Clientes", "Vencido", "Vencido (moneda)", "% vencido", "Al"]
    assert rows[1] == ["Cuenta clave", "3", "12500.10", "MXN", "12.5", "2026-11-30"]
    assert rows[2] == ["Régimen ñ", "1", "0.01", "EUR", "", "2026-11-30"]


def test_xlsx_keeps_numbers_and_dates_native_and_exact():
    with numbers.override("es-MX"):
        book = load_workbook(io.BytesIO(to_xlsx(TABLE)))
    sheet = book.active
    assert [c.value for c in sheet[1]] == ["Segmento", "Clientes", "Vencido", "Vencido (moneda)", "% vencido", "Al"]
    # The amount's currency placed as on the pages (docs/domain.md#number-formats).
    assert sheet["C2"].value == 12500.1 and sheet["C2"].number_format == '"$"#,##0.00'
    assert sheet["D2"].value == "MXN" and sheet["B2"].value == 3
    assert sheet["F2"].value.date() == dt.date(2026, 11, 30)
    assert sheet.freeze_panes == "A2"
    assert sheet["A5"].value.startswith("Vencido =")


def test_text_that_a_spreadsheet_would_run_as_a_formula_is_exported_inert():
    hostile = Table(
        title="Clientes",
        columns=[Column("name", "Cliente"), Column("overdue", "Vencido", MONEY)],
        rows=[
            {"name": "=cmd|' /C calc'!A0", "overdue": Decimal("-5.00"), "currency": "MXN"},
            {"name": "@SUM(1+1)", "overdue": Decimal("1.00"), "currency": "MXN"},
            {"name": "Ferretería — Norte", "overdue": Decimal("2.00"), "currency": "MXN"},
        ],
    )
    rows = list(csv.reader(io.StringIO(to_csv(hostile).decode("utf-8-sig"))))
    assert [r[0] for r in rows[1:]] == ["'=cmd|' /C calc'!A0", "'@SUM(1+1)", "Ferretería — Norte"]
    assert rows[1][1] == "-5.00"  # numbers stay numbers
    with numbers.override("es-MX"):
        sheet = load_workbook(io.BytesIO(to_xlsx(hostile))).active
    assert sheet["A2"].data_type == "s" and sheet["A2"].value == "'=cmd|' /C calc'!A0"
    assert sheet["B2"].value == Decimal("-5.00") or sheet["B2"].value == -5
