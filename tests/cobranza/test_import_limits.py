"""XLSX limits before parsing: a 63 KiB workbook expanding to a million cells made the import
page take 5.6 s on every view. Rows, cells and the uncompressed size are checked from the zip
and a streamed read of the sheet's XML before openpyxl loads anything; a file over them is a
field error at upload; the import page shows what was stored at upload, never parsing again."""

import io
import time
import zipfile

import pytest
from django.urls import reverse

from cobranza.imports import services as imports
from cobranza.models import ImportJob

pytestmark = pytest.mark.django_db

CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    "</Types>"
)
ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Target="xl/workbook.xml" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument"/>'
    "</Relationships>"
)
WORKBOOK = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    '<sheets><sheet name="Hoja1" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Target="worksheets/sheet1.xml" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet"/>'
    "</Relationships>"
)


def xlsx(sheet_data: str, *, dimension: str = "") -> bytes:
    """A minimal workbook around ``sheet_data`` (the <sheetData> content), deflated hard."""
    sheet = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        + (f'<dimension ref="{dimension}"/>' if dimension else "")
        + f"<sheetData>{sheet_data}</sheetData></worksheet>"
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("[Content_Types].xml", CONTENT_TYPES)
        zf.writestr("_rels/.rels", ROOT_RELS)
        zf.writestr("xl/workbook.xml", WORKBOOK)
        zf.writestr("xl/_rels/workbook.xml.rels", WORKBOOK_RELS)
        zf.writestr("xl/worksheets/sheet1.xml", sheet)
    return out.getvalue()


def bomb() -> bytes:
    """The probe's file: about 63 KiB expanding to a million cells (10,000 rows x 100)."""
    header = "<row>" + "".join(f'<c t="inlineStr"><is><t>C{i}</t></is></c>' for i in range(100)) + "</row>"
    row = "<row>" + "<c><v>1</v></c>" * 100 + "</row>"
    return xlsx(header + row * 9_999)


def _upload(client, data: bytes, name: str = "facturas.xlsx"):
    upload = io.BytesIO(data)
    upload.name = name
    return client.post(reverse("cobranza:import_create"), {"kind": "invoices", "file": upload, "mapping": ""})


def test_the_bomb_is_small_and_really_a_million_cells():
    data = bomb()
    assert len(data) < 70 * 1024
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.read("xl/worksheets/sheet1.xml").count(b"<c>") + 100 == 1_000_000


def test_a_million_cell_upload_is_refused_quickly_on_its_field(client, gerente):
    client.force_login(gerente)
    data = bomb()
    started = time.monotonic()
    response = _upload(client, data)
    assert time.monotonic() - started < 1
    assert response.status_code == 200
    errors = " ".join(response.context["form"].errors["file"])
    assert "más de 500,000 celdas" in errors
    assert not ImportJob.objects.exists()


@pytest.mark.parametrize(
    "sheet, dimension",
    [
        # Two cells, one at the last cell of a sheet: openpyxl would pad to 17 billion.
        ('<row r="1"><c r="A1"><v>1</v></c></row><row r="1048576"><c r="XFD1048576"><v>1</v></c></row>', ""),
        # A declared width openpyxl pads every row to: 50 rows x 16,384 columns.
        ('<row r="1"><c r="A1"><v>1</v></c></row><row r="50"><c r="A50"><v>1</v></c></row>', "A1:XFD50"),
        # Rows alone, without cells.
        ("<row/>" * 100_001, ""),
    ],
)
def test_the_extent_openpyxl_would_produce_is_what_counts(sheet, dimension):
    started = time.monotonic()
    with pytest.raises(imports.ImportRejected) as exc:
        imports.check_xlsx_limits(xlsx(sheet, dimension=dimension))
    assert time.monotonic() - started < 2
    assert "más de" in exc.value.errors[0]["reason"]


def test_the_uncompressed_size_is_checked_from_the_zip_directory(settings):
    settings.IMPORT_MAX_XLSX_MB = 1
    data = xlsx('<row><c t="inlineStr"><is><t>' + "x" * 2_000_000 + "</t></is></c></row>")
    with pytest.raises(imports.ImportRejected) as exc:
        imports.check_xlsx_limits(data)
    assert "el máximo es 1 MB" in exc.value.errors[0]["reason"]


def test_a_workbook_within_the_limits_reads_as_before(settings):
    data = xlsx(
        '<row><c t="inlineStr"><is><t>Folio</t></is></c><c t="inlineStr"><is><t>Importe</t></is></c></row>'
        "<row><c><v>1</v></c><c><v>250.5</v></c></row>"
    )
    assert imports.check_xlsx_limits(data) == 2
    assert imports.file_facts(data, name="f.xlsx")["headers"] == ["Folio", "Importe"]
    headers, rows = imports.read_table(data, name="f.xlsx")
    assert headers == ["Folio", "Importe"] and rows == [(2, [1, 250.5])]


def test_a_csv_over_the_row_limit_is_refused_on_its_field(client, gerente, settings):
    settings.IMPORT_MAX_ROWS = 10
    client.force_login(gerente)
    response = _upload(client, ("Folio,Importe\n" + "F,1\n" * 11).encode(), name="f.csv")
    assert "más de 10 filas" in " ".join(response.context["form"].errors["file"])


def test_the_import_page_never_parses_the_stored_file_again(client, gerente, monkeypatch):
    client.force_login(gerente)
    data = xlsx(
        '<row><c t="inlineStr"><is><t>Folio</t></is></c><c t="inlineStr"><is><t>Importe</t></is></c></row>'
        "<row><c><v>1</v></c><c><v>250.5</v></c></row>"
    )
    response = _upload(client, data)
    job = ImportJob.objects.get()
    assert response.status_code == 302

    def no_parsing(*args, **kwargs):
        raise AssertionError("the import page parsed the stored file")

    for name in ("read_table", "file_facts", "check_xlsx_limits", "_load_workbook"):
        monkeypatch.setattr(imports, name, no_parsing)
    imports.job_file(job).unlink()
    for _ in range(2):
        page = client.get(reverse("cobranza:import_detail", args=[job.pk]))
        assert page.status_code == 200
        html = page.content.decode()
        assert 'name="col_number"' in html and ">Folio<" in html
