"""Malformed accounting exports through the import service's public entry points — the ones
``manage.py import_ledger`` uses (``job_create`` with a path, then ``run_job``) — as a dry run
and as a real run: no crash, every error with its row, column and reason, and nothing written
when a file is rejected. The corpus is tests/fixtures/import_corpus/ (see build.py there);
Hypothesis adds random bytes and random CSV cells.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import Client, Interaction, Invoice, Payment
from cobranza.imports import services as imports
from cobranza.models import ImportJob
from tests.factories import make_client

pytestmark = pytest.mark.django_db

CORPUS = Path(__file__).resolve().parent.parent / "fixtures" / "import_corpus"
REJECTED, ACCEPTED = "rejected", "accepted"

# file → (import kind, outcome). Every file in the folder must be listed here.
EXPECTED = {
    "ok_invoices.csv": ("invoices", ACCEPTED),
    "ok_invoices.xlsx": ("invoices", ACCEPTED),
    "ok_utf8_bom_semicolons.csv": ("invoices", ACCEPTED),
    "ok_latin1_accents.csv": ("invoices", ACCEPTED),
    "ok_quoted_newlines_crlf.csv": ("invoices", ACCEPTED),
    "empty.csv": ("invoices", REJECTED),
    "only_whitespace.csv": ("invoices", REJECTED),
    "only_header.csv": ("invoices", REJECTED),
    "missing_required_column.csv": ("invoices", REJECTED),
    "extra_unmapped_column.csv": ("invoices", REJECTED),
    "duplicated_header.csv": ("invoices", REJECTED),
    "wrong_delimiter_pipes.csv": ("invoices", REJECTED),
    "ten_thousand_columns.csv": ("invoices", REJECTED),
    "ragged_rows.csv": ("invoices", REJECTED),
    "unterminated_quote.csv": ("invoices", REJECTED),
    "utf16_with_bom.csv": ("invoices", REJECTED),
    "nul_bytes.csv": ("invoices", REJECTED),
    "binary_garbage.csv": ("invoices", REJECTED),
    "csv_renamed.xlsx": ("invoices", REJECTED),
    "truncated.xlsx": ("invoices", REJECTED),
    "zip_not_a_workbook.xlsx": ("invoices", REJECTED),
    "damaged_sheet.xlsx": ("invoices", REJECTED),
    "duplicated_numbers.csv": ("invoices", REJECTED),
    "bad_dates_iso.csv": ("invoices", REJECTED),
    "bad_dates_day_first.csv": ("invoices", REJECTED),
    "bad_dates_month_first.csv": ("invoices", REJECTED),
    "bad_dates_words_and_years.csv": ("invoices", REJECTED),
    "negative_amounts.csv": ("invoices", REJECTED),
    "non_numeric_amounts.csv": ("invoices", REJECTED),
    "amount_overflow.csv": ("invoices", REJECTED),
    "mixed_thousands_separators.csv": ("invoices", REJECTED),
    # Accepted: a cell is data, stored as typed (see the test below); keeping it inert is the
    # exports' job (CSV/XLSX writers), not the importer's.
    "formula_injection.csv": ("invoices", ACCEPTED),
    "huge_cell.csv": ("invoices", REJECTED),
    "overlong_number_and_currency.csv": ("invoices", REJECTED),
    "unknown_client_and_currency_mismatch.csv": ("invoices", REJECTED),
    "xlsx_wrong_cell_types.xlsx": ("invoices", REJECTED),
    "payments_bad.csv": ("payments", REJECTED),
    "payments_future_date.csv": ("payments", REJECTED),
    "clients_bad.csv": ("clients", REJECTED),
}


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def ledger(gerente):
    """The clients the corpus names."""
    return [
        make_client(by=gerente, tax_id="AAA010101AAA", legal_name="Ferretería Núñez", currency="MXN"),
        make_client(
            by=gerente, tax_id="BBB020202BBB", legal_name="Talleres Ibéricos S.L.", currency="EUR", country="ES"
        ),
    ]


def counts() -> tuple[int, int, int, int]:
    return (Client.objects.count(), Invoice.objects.count(), Payment.objects.count(), Interaction.objects.count())


def run_import(path: Path, *, kind: str, dry_run: bool) -> ImportJob:
    """What ``import_ledger FILE --kind KIND [--dry-run]`` does, minus the printing."""
    job = imports.job_create(by=None, kind=kind, file_name=path.name, data=b"", dry_run=dry_run, path=str(path))
    return imports.run_job(job)  # an exception out of here is a crash


def assert_reported(job: ImportJob) -> None:
    assert job.status in (ImportJob.Status.REJECTED, ImportJob.Status.DONE), job.status
    if job.status == ImportJob.Status.REJECTED:
        assert job.errors, "rejected without saying why"
        for error in job.errors:
            assert set(error) == {"row", "column", "reason"}, error
            assert isinstance(error["row"], int) and error["row"] >= 1, error
            assert isinstance(error["column"], str)
            assert isinstance(error["reason"], str) and error["reason"].strip(), error
            assert "Error inesperado" not in error["reason"]


def test_every_corpus_file_has_an_expected_outcome():
    on_disk = {p.name for p in CORPUS.iterdir() if p.name not in ("build.py", "README.md")}
    assert on_disk == set(EXPECTED)
    assert len(on_disk) >= 15


def _corpus_params():
    for name in sorted(EXPECTED):
        yield pytest.param(name, id=name)


@pytest.mark.parametrize("dry_run", [True, False], ids=["dry-run", "real-run"])
@pytest.mark.parametrize("name", list(_corpus_params()))
def test_a_corpus_file_is_imported_or_rejected_with_row_column_and_reason_never_half_written(ledger, name, dry_run):
    kind, outcome = EXPECTED[name]
    before = counts()
    job = run_import(CORPUS / name, kind=kind, dry_run=dry_run)
    assert_reported(job)
    expected_status = ImportJob.Status.DONE if outcome == ACCEPTED else ImportJob.Status.REJECTED
    assert job.status == expected_status, job.errors
    if outcome == REJECTED or dry_run:
        assert counts() == before, "a rejected file or a dry run wrote something"
    else:
        assert counts()[1] > before[1], "an accepted file wrote no invoice"
        # Importing the same file again changes nothing.
        again = counts()
        assert run_import(CORPUS / name, kind=kind, dry_run=False).status == ImportJob.Status.DONE
        assert counts() == again


def test_a_workbook_with_a_damaged_sheet_is_rejected_not_a_crash(ledger):
    """Regression: the lazy read-only sheet raised ParseError out of run_job (found by fuzzing)."""
    before = counts()
    job = run_import(CORPUS / "damaged_sheet.xlsx", kind="invoices", dry_run=False)
    assert job.status == ImportJob.Status.REJECTED
    assert job.errors[0]["row"] == 1
    assert counts() == before


def test_formula_like_cells_are_stored_as_the_text_they_are(ledger):
    job = run_import(CORPUS / "formula_injection.csv", kind="invoices", dry_run=False)
    assert job.status == ImportJob.Status.DONE, job.errors
    stored = dict(Invoice.objects.filter(client=ledger[0]).values_list("number", "description"))
    assert stored == {
        "F-1": "=cmd|' /C calc'!A0",
        '=HYPERLINK("http://x")': "+SUM(1;2)",
        "@F-3": "-2+3",
    }


def test_a_cell_over_the_csv_field_limit_is_a_row_error_not_a_crash(ledger):
    """Regression: csv.Error (a cell over the csv module's field limit) escaped run_job."""
    before = counts()
    job = run_import(CORPUS / "huge_cell.csv", kind="invoices", dry_run=True)
    assert job.status == ImportJob.Status.REJECTED
    assert job.errors[0]["row"] == 2
    assert counts() == before


def test_the_command_rejects_a_malformed_file_with_exit_status_one_and_the_reasons(ledger, capsys):
    before = counts()
    with pytest.raises(SystemExit) as exit_:
        call_command("import_ledger", str(CORPUS / "bad_dates_iso.csv"), "--kind", "invoices")
    assert exit_.value.code == 1
    assert "fila 2" in capsys.readouterr().err
    assert counts() == before


# --- generated variations --------------------------------------------------------------------

EXAMPLES = int(os.environ.get("FUZZ_PROPERTIES", "0")) or 12
FILE_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

HEADERS = {
    "invoices": ["Folio", "RFC", "Emision", "Vencimiento", "Importe", "Moneda"],
    "payments": ["Referencia", "RFC", "Fecha", "Importe", "Folio"],
    "clients": ["RFC", "Razon social", "Segmento", "Moneda", "Pais"],
}
# Cells that look like the real thing more often than random text does.
cell = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["AAA010101AAA", "BBB020202BBB", "MXN", "EUR", "regular", "F-1", "P-1", "", " "]),
    st.dates().map(lambda d: d.isoformat()),
    st.dates().map(lambda d: d.strftime("%d/%m/%Y")),
    st.decimals(allow_nan=True, allow_infinity=True, places=3).map(str),
    st.integers().map(str),
)


def _csv(headers, rows) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(headers)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def _check_file(tmp_path: Path, data: bytes, *, kind: str, suffix: str) -> None:
    path = tmp_path / f"generado{suffix}"
    path.write_bytes(data)
    for dry_run in (True, False):
        with transaction.atomic():
            before = counts()
            job = run_import(path, kind=kind, dry_run=dry_run)
            assert_reported(job)
            if job.status == ImportJob.Status.REJECTED or dry_run:
                assert counts() == before
            transaction.set_rollback(True)


def test_random_bytes_never_crash_an_import(ledger, tmp_path):
    @FILE_SETTINGS
    @given(
        data=st.binary(max_size=2048), kind=st.sampled_from(sorted(HEADERS)), suffix=st.sampled_from([".csv", ".xlsx"])
    )
    def check(data, kind, suffix):
        _check_file(tmp_path, data, kind=kind, suffix=suffix)

    check()


def test_random_csv_cells_never_crash_an_import(ledger, tmp_path):
    @FILE_SETTINGS
    @given(data=st.data(), kind=st.sampled_from(sorted(HEADERS)))
    def check(data, kind):
        headers = HEADERS[kind]
        rows = data.draw(st.lists(st.lists(cell, min_size=len(headers), max_size=len(headers)), min_size=1, max_size=6))
        _check_file(tmp_path, _csv(headers, rows), kind=kind, suffix=".csv")

    check()
