"""Import clients, invoices and payments from accounting exports (CSV or XLSX).

The write-side counterpart of ``cobranza.exports``. Three steps, always in this order:

1. **read**: decode the file (UTF-8 with or without BOM; Latin-1 when ``encoding="auto"`` and
   the bytes are not UTF-8), sniff the delimiter (comma, semicolon, tab), or read the first
   sheet of an XLSX workbook;
2. **validate** every row against the mapping (their header for each of our fields) and the
   database, set-based (one query per referenced table, not per row). Each problem becomes
   ``{"row", "column", "reason"}`` with the row numbered as a spreadsheet shows it (header =
   row 1) and the column named by *their* header. Any error rejects the whole file;
3. **write** (not in a dry run): one transaction, upsert by natural key (client tax id,
   invoice number, payment reference), through the set-based ``accounts.services_bulk`` (and
   its ledger writer, the one ``seed_demo`` and the benchmark loader use too) in
   chunks of ``WRITE_CHUNK`` rows (the same rules as the single-row services, thousands of
   rows a second), with one timeline entry per client for the whole file. A row equal to
   what is stored is counted as unchanged, so importing the same file twice changes nothing.

Progress: validation updates ``processed_rows`` every ``PROGRESS_EVERY`` rows in autocommit
(the browser sees it climb). The write runs in one transaction; after each chunk the rows
written so far are stored through a second connection (``_WriteProgress``), so the bar moves
during the write too, while a failure still rolls back everything the import wrote. When the
import runs inside a caller's transaction that is not possible: the job says
``summary["live_progress"] = False`` and the page shows an indeterminate bar until it is done.

Invoices are never modified once stored (there is no invoice-update service, and amounts or
dates of an invoice that may already carry payments should not change silently): a row whose
number exists with different data is an error. A settlement date on an invoice row records a
payment of the open balance received on that day, so a business can load paid history
(the client's timeline gets one entry for the file, dated when it was imported, listing the
payments with their dates); importing it again finds the invoice paid and does nothing.

An invoice file may create the clients it names that do not exist (``Options.create_clients``,
in ``Options.segment``): they are planned with the invoices and written first, in the same
transaction. The ``ledger`` kind is one invoice export with a settled-date column read as all
three kinds: its missing clients, its invoices and one payment per settled invoice, referenced
``PAGO-<number>`` so a second import finds it (docs/domain.md#imports).
"""

from __future__ import annotations

import contextlib
import copy
import csv
import datetime as dt
import functools
import gc
import io
import json
import os
import re
import time
import unicodedata
import zipfile
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path, PurePosixPath
from xml.etree import ElementTree
from xml.parsers import expat

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connection, connections, transaction
from django.db.models import BooleanField, QuerySet
from django.db.models.expressions import RawSQL
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts import audit, clock, services_bulk
from accounts import services as ledger
from accounts.models import Client, Invoice, Payment, Segment, default_time_zone, iso_currencies, validate_amount
from accounts.roles import GROUP_NAMES
from accounts.utils import actor
from cobranza.dashboard import jobs as dashboard_jobs
from cobranza.dashboard import summaries
from cobranza.exports import inert_cell
from cobranza.models import (
    Dispute,
    DisputeReason,
    DisputeResolution,
    DisputeStatus,
    ImportJob,
    ImportKind,
    ImportMapping,
)
from cobranza.profiles import jobs as profile_jobs
from cobranza.worklist import jobs as worklist_jobs

PROGRESS_EVERY = 500
INLINE_MAX_ROWS = 2000
DATE_FORMATS = ("auto", "%d/%m/%Y", "%m/%d/%Y", "%Y-%m-%d")
ENCODINGS = ("auto", "utf-8", "latin-1")
IGNORE_KEY = "_ignore"  # mapping key: their headers to skip ("*" = every unmapped column)


@dataclass(frozen=True)
class Field:
    name: str
    label: object  # lazy translation
    kind: str = "text"  # text | date | money | int | code
    required: bool = True
    aliases: tuple[str, ...] = ()


# A client's country and time zone, declared once: a client file and an invoice file that
# creates its missing clients (NEW_CLIENT_FIELDS) read them alike; the invoice file labels
# them as the client's (its other columns are the invoice's).
_COUNTRY_ALIASES = ("pais", "country", "country code")
_TIME_ZONE_ALIASES = ("zona horaria", "time zone", "timezone", "tz")


def _country_field(label, *more_aliases: str) -> Field:
    return Field("country", label, "code", required=False, aliases=(*_COUNTRY_ALIASES, *more_aliases))


def _time_zone_field(label) -> Field:
    return Field("time_zone", label, required=False, aliases=_TIME_ZONE_ALIASES)


# What an invoice file may tell of a client it names that does not exist yet, when the import
# creates the clients that are missing (docs/domain.md#imports).
NEW_CLIENT_FIELDS = (
    Field(
        "client_name",
        gettext_lazy("Nombre del cliente"),
        required=False,
        aliases=(
            "nombre del cliente",
            "nombre cliente",
            "razon social",
            "nombre",
            "customer name",
            "client name",
            "name",
            "company",
            "company name",
        ),
    ),
    _country_field(gettext_lazy("País del cliente"), "customer country"),
    _time_zone_field(gettext_lazy("Zona horaria del cliente")),
)

# Aliases: the headers accounting exports use, in Spanish and English (compared without
# accents, case or punctuation; the field's name and label are recognised too).
FIELDS: dict[str, list[Field]] = {
    ImportKind.CLIENTS: [
        Field(
            "tax_id",
            gettext_lazy("RFC / NIF"),
            aliases=("rfc", "nif", "cif", "tax id", "customer id", "customer number", "id cliente", "cliente"),
        ),
        Field(
            "legal_name",
            gettext_lazy("Razón social"),
            aliases=("razon social", "nombre", "name", "customer name", "customer", "company", "company name"),
        ),
        Field(
            "trade_name",
            gettext_lazy("Nombre comercial"),
            required=False,
            aliases=("nombre comercial", "trade name", "dba"),
        ),
        Field("segment", gettext_lazy("Segmento (código)"), "code", aliases=("segmento", "segment")),
        Field(
            "collector",
            gettext_lazy("Gestor (usuario)"),
            required=False,
            aliases=("gestor", "cobrador", "collector", "account manager"),
        ),
        Field("currency", gettext_lazy("Moneda"), "code", required=False, aliases=("moneda", "currency")),
        Field(
            "payment_terms_days",
            gettext_lazy("Plazo (días)"),
            "int",
            required=False,
            aliases=("plazo", "dias de credito", "payment terms", "terms"),
        ),
        Field(
            "credit_limit",
            gettext_lazy("Límite de crédito"),
            "money",
            required=False,
            aliases=("limite", "limite de credito", "credit limit"),
        ),
        _country_field(gettext_lazy("País")),
        _time_zone_field(gettext_lazy("Zona horaria")),
    ],
    ImportKind.INVOICES: [
        Field(
            "number",
            gettext_lazy("Folio"),
            aliases=("folio", "factura", "numero", "invoice", "invoice number", "invoice no", "invoice id", "number"),
        ),
        Field(
            "client",
            gettext_lazy("RFC / NIF del cliente"),
            aliases=("rfc", "nif", "tax_id", "cliente", "customer id", "customer", "customer number", "id cliente"),
        ),
        Field(
            "issue_date",
            gettext_lazy("Fecha de emisión"),
            "date",
            aliases=("emision", "fecha", "fecha factura", "invoice date", "issue date", "date"),
        ),
        Field(
            "due_date",
            gettext_lazy("Fecha de vencimiento"),
            "date",
            required=False,
            aliases=("vencimiento", "due date", "due"),
        ),
        Field("amount", gettext_lazy("Importe"), "money", aliases=("importe", "total", "amount", "invoice amount")),
        Field("currency", gettext_lazy("Moneda"), "code", required=False, aliases=("moneda", "currency")),
        Field(
            "settled_on",
            gettext_lazy("Fecha de liquidación"),
            "date",
            required=False,
            aliases=(
                "liquidacion",
                "fecha de pago",
                "pagada el",
                "settled date",
                "settled on",
                "paid date",
                "date paid",
            ),
        ),
        Field(
            "description",
            gettext_lazy("Concepto"),
            required=False,
            aliases=("concepto", "descripcion", "description", "memo"),
        ),
        # A complaint that withheld payment (docs/domain.md#disputes): a historical dispute.
        Field(
            "disputed",
            gettext_lazy("En disputa (sí/no)"),
            "bool",
            required=False,
            aliases=("en disputa", "disputa", "disputada", "disputed", "in dispute", "dispute"),
        ),
        Field(
            "dispute_opened_on",
            gettext_lazy("Disputa abierta el"),
            "date",
            required=False,
            aliases=("disputa abierta", "fecha de disputa", "dispute opened", "dispute date", "disputed on"),
        ),
        Field(
            "dispute_resolved_on",
            gettext_lazy("Disputa resuelta el"),
            "date",
            required=False,
            aliases=("disputa resuelta", "fecha de resolucion", "dispute resolved", "resolved on", "resolution date"),
        ),
        *NEW_CLIENT_FIELDS,
    ],
    ImportKind.PAYMENTS: [
        Field(
            "reference",
            gettext_lazy("Referencia"),
            aliases=("referencia", "reference", "payment reference", "payment id", "ref"),
        ),
        Field(
            "client",
            gettext_lazy("RFC / NIF del cliente"),
            aliases=("rfc", "nif", "tax_id", "cliente", "customer id", "customer", "customer number", "id cliente"),
        ),
        Field(
            "received_on",
            gettext_lazy("Fecha de pago"),
            "date",
            aliases=("fecha", "date", "fecha de pago", "payment date", "received on", "received"),
        ),
        Field("amount", gettext_lazy("Importe"), "money", aliases=("importe", "amount", "payment amount")),
        Field("currency", gettext_lazy("Moneda"), "code", required=False, aliases=("moneda", "currency")),
        Field(
            "invoice",
            gettext_lazy("Folio de factura"),
            required=False,
            aliases=("folio", "factura", "invoice", "invoice number", "invoice no"),
        ),
    ],
}
# One invoice export with a settled-date column: its clients, its invoices and one payment per
# settled invoice (docs/domain.md#imports).
_CLIENT_FIELD_NAMES = {f.name for f in NEW_CLIENT_FIELDS}
FIELDS[ImportKind.LEDGER] = [
    *(f for f in FIELDS[ImportKind.INVOICES] if f.name not in _CLIENT_FIELD_NAMES),
    Field(
        "paid_amount",
        gettext_lazy("Importe pagado"),
        "money",
        required=False,
        aliases=("importe pagado", "pagado", "monto pagado", "paid amount", "amount paid", "paid"),
    ),
    *NEW_CLIENT_FIELDS,
]

YES = {"si", "s", "yes", "y", "true", "verdadero", "1", "x"}
NO = {"no", "n", "false", "falso", "0"}

CURRENCY_SYMBOLS = {"$": None, "€": "EUR", "US$": "USD", "MX$": "MXN"}


def fields_for(kind: str) -> list[Field]:
    return FIELDS[ImportKind(kind)]


# --- options and errors ------------------------------------------------------------------


@dataclass
class Options:
    kind: str
    columns: dict = field(default_factory=dict)  # our field -> their header ({} = guess by name)
    date_format: str = "auto"
    decimal_separator: str = "."
    encoding: str = "auto"
    # Invoices (and always the ledger): create the clients the file names that do not exist,
    # in this segment (its code; "" = default_segment()). A choice of the import, not of the
    # saved mapping.
    create_clients: bool = False
    segment: str = ""

    @classmethod
    def from_mapping(cls, mapping: ImportMapping) -> Options:
        return cls(
            kind=mapping.kind,
            columns=dict(mapping.columns or {}),
            date_format=mapping.date_format or "auto",
            decimal_separator=mapping.decimal_separator or ".",
            encoding=mapping.encoding or "auto",
        )

    @property
    def creates_clients(self) -> bool:
        return self.kind == ImportKind.LEDGER or (self.kind == ImportKind.INVOICES and self.create_clients)


# The segment new clients of an invoice file go to unless the import chooses another: the one
# seeded for usual clients (standard escalation), else the first in the segments' order.
DEFAULT_SEGMENT_CODE = "regular"


def default_segment() -> Segment | None:
    usual = Segment.objects.filter(code=DEFAULT_SEGMENT_CODE).first()
    return usual or Segment.objects.order_by("position", "name").first()


def segment_named(value: str) -> Segment | None:
    """The segment a code or a name (any case) names, or None."""
    value = (value or "").strip()
    if not value:
        return None
    return Segment.objects.filter(code__iexact=value).first() or Segment.objects.filter(name__iexact=value).first()


def payment_reference(number: str) -> str:
    """The reference of the payment a ledger row derives from its invoice: re-importing the
    file finds it and records nothing again (docs/domain.md#imports)."""
    return f"PAGO-{number}"


class ImportRejected(Exception):
    def __init__(self, errors: list[dict]):
        super().__init__(f"{len(errors)} errors")
        self.errors = errors


def _err(row: int, column: str, reason: str) -> dict:
    return {"row": row, "column": column, "reason": str(reason)}


# --- reading -----------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _decode(data: bytes, encoding: str) -> str:
    """Text of a CSV file, or ImportRejected naming the first row that cannot be read."""
    if encoding in ("auto", "utf-8"):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            if encoding == "utf-8":
                row = data[: exc.start].count(b"\n") + 1
                raise ImportRejected(
                    [
                        _err(
                            row,
                            "",
                            _(
                                "El archivo no está en UTF-8 (byte no válido en la fila %(row)s). "
                                "Guárdelo como CSV UTF-8 o elija la codificación Latin-1."
                            )
                            % {"row": row},
                        )
                    ]
                ) from exc
            text = data.decode("latin-1")
    else:
        text = data.decode("latin-1")
    # Latin-1 decodes any byte; a UTF-16 or binary file shows up as control characters.
    bad = _CONTROL.search(text)
    if bad:
        row = text.count("\n", 0, bad.start()) + 1
        raise ImportRejected(
            [
                _err(
                    row,
                    "",
                    _(
                        "La codificación del archivo no es UTF-8 ni Latin-1 (hay caracteres de control en la "
                        "fila %(row)s). Expórtelo como CSV UTF-8 o como XLSX."
                    )
                    % {"row": row},
                )
            ]
        )
    return text


def _sniff_delimiter(text: str) -> str:
    first = text.split("\n", 1)[0]
    counts = {d: first.count(d) for d in (";", "\t", ",")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _is_xlsx(data: bytes, name: str) -> bool:
    return data[:2] == b"PK" or name.lower().endswith((".xlsx", ".xlsm"))


# --- limits, checked before a workbook is parsed ------------------------------------------
# An XLSX is a zip of XML: 63 KiB can expand to a million cells, and openpyxl's read-only mode
# still pads every row to the sheet's declared width (a cell at XFD1048576 is 17 billion empty
# cells). So the zip's directory and the first sheet's XML are checked first, streamed (no cell
# objects), against IMPORT_MAX_ROWS, IMPORT_MAX_CELLS (rows x columns, as openpyxl would yield
# them) and IMPORT_MAX_XLSX_MB (the whole workbook uncompressed).
_NS_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
_CELL_REF = re.compile(r"^([A-Z]{1,3})?([0-9]+)?$")


def _limits() -> tuple[int, int, int]:
    return (
        settings.IMPORT_MAX_ROWS,
        settings.IMPORT_MAX_CELLS,
        settings.IMPORT_MAX_XLSX_MB * 1024 * 1024,
    )


def _column_number(letters: str) -> int:
    number = 0
    for letter in letters:
        number = number * 26 + ord(letter) - 64
    return number


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _first_sheet(zf: zipfile.ZipFile) -> str:
    """The member holding the first sheet, found as openpyxl finds it: the first <sheet> of
    xl/workbook.xml and its relationship's target."""
    # Small parts (their size is bounded by the uncompressed limit already checked). Python's
    # expat (>= 2.4) refuses entity-expansion bombs.
    workbook = ElementTree.fromstring(zf.read("xl/workbook.xml"))  # noqa: S314
    sheet = next(e for e in workbook.iter() if _local(e.tag) == "sheet")
    rels = ElementTree.fromstring(zf.read("xl/_rels/workbook.xml.rels"))  # noqa: S314
    target = next(e.get("Target") for e in rels.iter() if e.get("Id") == sheet.get(_NS_REL))
    path = target.lstrip("/") if target.startswith("/") else str(PurePosixPath("xl") / target)
    return os.path.normpath(path).replace(os.sep, "/")


def _too_big(message: str) -> ImportRejected:
    return ImportRejected([_err(1, "", message)])


class _SheetExtent:
    """The extent of a sheet, counted by expat as its XML streams by (no tree, no cells)."""

    class Over(Exception):
        pass

    def __init__(self, *, max_rows: int, max_cells: int):
        self.max_rows, self.max_cells = max_rows, max_cells
        self.last_row = self.last_column = self.cells = self.row = self.column = 0

    def _ref(self, ref: str) -> tuple[int, int]:
        match = _CELL_REF.match(ref or "")
        if not match:
            return 0, 0
        return _column_number(match[1] or ""), int(match[2] or 0)

    def start(self, name: str, attrs: dict) -> None:
        tag = _local(name)
        if tag == "dimension":
            # openpyxl pads each row to the declared width: the declaration counts.
            for ref in (attrs.get("ref") or "").split(":"):
                column, row = self._ref(ref)
                self.last_column, self.last_row = max(self.last_column, column), max(self.last_row, row)
        elif tag == "row":
            self.row = int(attrs.get("r") or self.row + 1)
            self.column = 0
            self.last_row = max(self.last_row, self.row)
        elif tag == "c":
            self.cells += 1
            column, _row = self._ref(attrs.get("r"))
            self.column = column or self.column + 1
            self.last_column = max(self.last_column, self.column)
        else:
            return
        if self.over_rows or self.over_cells:
            raise self.Over

    @property
    def over_rows(self) -> bool:
        return self.last_row > self.max_rows

    @property
    def over_cells(self) -> bool:
        return max(self.cells, self.last_row * max(self.last_column, 1)) > self.max_cells


# A cell's start tag, with or without a namespace prefix: <c>, <c r="A1">, <x:c/>.
_CELL_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?c[\s>/]")


def _count_cells(zf: zipfile.ZipFile, member: str, *, stop_after: int) -> int:
    """Cells in ``member`` counted from the bytes, stopping once past ``stop_after``."""
    count, tail = 0, b""
    with zf.open(member) as stream:
        while chunk := stream.read(256 * 1024):
            # A tag split across two chunks is seen whole in the overlap (tags here are short).
            window = tail + chunk
            count += len(_CELL_TAG.findall(window)) - len(_CELL_TAG.findall(tail))
            tail = window[-64:]
            if count > stop_after:
                break
    return count


def check_xlsx_limits(data: bytes) -> int:
    """Refuse (ImportRejected) a workbook over the limits without loading it: the zip's
    directory for the uncompressed size, then the first sheet's XML streamed for its extent,
    stopping at the first element over a limit. Returns the sheet's last row number."""
    max_rows, max_cells, max_bytes = _limits()
    extent = _SheetExtent(max_rows=max_rows, max_cells=max_cells)
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        size = sum(info.file_size for info in zf.infolist())
        if size > max_bytes:
            raise _too_big(
                _("El libro de Excel descomprimido ocupa %(size)s MB; el máximo es %(limit)s MB.")
                % {"size": f"{size / 1024 / 1024:,.0f}", "limit": settings.IMPORT_MAX_XLSX_MB}
            )
        sheet = _first_sheet(zf)
        # A first pass at C speed: a million cells are refused in a tenth of a second.
        extent.cells = _count_cells(zf, sheet, stop_after=max_cells)
        if extent.over_cells:
            raise _SheetExtent.Over
        extent.cells = 0
        # Then the exact extent, one element at a time (at most max_cells of them).
        parser = expat.ParserCreate(namespace_separator="}")
        parser.StartElementHandler = extent.start
        with zf.open(sheet) as stream:
            while chunk := stream.read(64 * 1024):
                parser.Parse(chunk, False)
            parser.Parse(b"", True)
    except (ImportRejected, _SheetExtent.Over):
        if not (extent.over_rows or extent.over_cells):
            raise
    except Exception as exc:  # noqa: BLE001 - a damaged zip or XML: the same answer as openpyxl's
        raise _too_big(_("No se pudo leer el libro de Excel (XLSX).")) from exc
    check_rows(extent.last_row)
    if extent.over_cells:
        raise _too_big(
            _("La hoja tiene más de %(limit)s celdas (filas × columnas); divida el archivo o quite columnas.")
            % {"limit": f"{max_cells:,}"}
        )
    return extent.last_row


def _load_workbook(data: bytes, **options):
    # Imported here: openpyxl costs ~0.1 s at start-up of every web and worker process, and
    # only an XLSX import needs it.
    import openpyxl

    return openpyxl.load_workbook(io.BytesIO(data), read_only=True, **options)


def _is_blank(row) -> bool:
    return not any(c not in (None, "") and str(c).strip() for c in row)


def _headers_of(row) -> list[str]:
    headers = [("" if h is None else str(h)).strip() for h in row]
    while headers and not headers[-1]:
        headers.pop()
    return headers


# What the import pages need of a file, read once at upload and kept in the job's summary:
# the pages never parse a stored file to render.
FILE_FACTS = ("headers", "rows", "read_errors")


def file_facts(data: bytes, *, name: str = "", encoding: str = "auto") -> dict:
    """Its headers (the first non-blank row) and its rows (an estimate), reading the first
    rows only: an XLSX is checked against the limits, then streamed in read-only mode."""
    if not data.strip():
        raise ImportRejected([_err(1, "", _("El archivo está vacío."))])
    if _is_xlsx(data, name):
        rows = check_xlsx_limits(data)
        try:
            wb = _load_workbook(data, data_only=True)
            header = next((r for r in wb.worksheets[0].iter_rows(values_only=True) if not _is_blank(r)), ())
            wb.close()
        except Exception as exc:  # noqa: BLE001 - openpyxl raises many kinds for a damaged workbook
            raise ImportRejected([_err(1, "", _("No se pudo leer el libro de Excel (XLSX)."))]) from exc
    else:
        text = _decode(data, encoding)
        rows = text.count("\n")
        check_rows(rows)
        lines = csv.reader(io.StringIO(text, newline=""), delimiter=_sniff_delimiter(text))
        try:
            header = next((r for r in lines if not _is_blank(r)), [])
        except csv.Error as exc:
            raise ImportRejected([_err(1, "", _("No se pudo leer el encabezado del CSV."))]) from exc
    return {"headers": _headers_of(header), "rows": max(rows - 1, 0), "read_errors": []}


def check_rows(rows: int) -> None:
    if rows > settings.IMPORT_MAX_ROWS:
        raise _too_big(
            _("La hoja tiene más de %(limit)s filas; divida el archivo.") % {"limit": f"{settings.IMPORT_MAX_ROWS:,}"}
        )


def read_table(data: bytes, *, name: str = "", encoding: str = "auto") -> tuple[list[str], list[list]]:
    """Headers and data rows (lists of cell values). Blank rows are dropped."""
    if not data.strip():
        raise ImportRejected([_err(1, "", _("El archivo está vacío."))])
    if _is_xlsx(data, name):
        check_xlsx_limits(data)
        try:
            wb = _load_workbook(data, data_only=True)
            # Read-only sheets are parsed lazily: a damaged sheet fails here, not at load.
            rows = [list(r) for r in wb.worksheets[0].iter_rows(values_only=True)]
            wb.close()
        except Exception as exc:  # noqa: BLE001 - openpyxl raises many kinds for a damaged workbook
            raise ImportRejected([_err(1, "", _("No se pudo leer el libro de Excel (XLSX)."))]) from exc
    else:
        text = _decode(data, encoding)
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=_sniff_delimiter(text))
        rows = []
        try:
            rows.extend(reader)
        except csv.Error as exc:  # a cell over csv.field_size_limit(), or a damaged file
            row = len(rows) + 1
            message = _(
                "No se pudo leer la fila %(row)s: una celda supera %(limit)s caracteres o el CSV está dañado."
            ) % {"row": row, "limit": f"{csv.field_size_limit():,}"}
            raise ImportRejected([_err(row, "", message)]) from exc
    # Keep row numbers as the user sees them: blank rows are skipped, not renumbered.
    check_rows(len(rows))
    numbered = [(i + 1, r) for i, r in enumerate(rows) if not _is_blank(r)]
    if not numbered:
        raise ImportRejected([_err(1, "", _("El archivo está vacío."))])
    (_first, header), *body = numbered
    headers = _headers_of(header)
    if not body:
        raise ImportRejected([_err(1, "", _("El archivo sólo tiene encabezados: no hay filas que importar."))])
    return headers, body


def _norm(text: str) -> str:
    text = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", " ", text).strip()


def guess_columns(kind: str, headers: list[str]) -> dict:
    """Our field -> their header, by field name, label or a common Spanish alias."""
    by_norm = {_norm(h): h for h in headers if h}
    guess, used = {}, set()
    for f in fields_for(kind):
        for candidate in (f.name, str(f.label), *f.aliases):
            h = by_norm.get(_norm(candidate))
            if h and h not in used:
                guess[f.name] = h
                used.add(h)
                break
    return guess


# --- cell parsing ------------------------------------------------------------------------

_ISO = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T].*)?$")
_SLASH = re.compile(r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})$")


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def detect_day_first(values) -> bool | None:
    """True for d/m/Y, False for m/d/Y, None when no value tells (or they disagree)."""
    day_first = month_first = False
    for v in values:
        m = _SLASH.match(v) if isinstance(v, str) else None
        if not m:
            continue
        a, b = int(m.group(1)), int(m.group(2))
        day_first |= a > 12
        month_first |= b > 12
    if day_first == month_first:
        return None
    return day_first


class AmbiguousDate(ValueError):
    pass


def parse_date(value, *, fmt: str, day_first: bool | None) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = _text(value)
    if fmt != "auto":
        try:
            return dt.datetime.strptime(text.replace("-", "/") if "/" in fmt else text, fmt).date()
        except ValueError:
            raise ValueError(
                _("«%(v)s» no es una fecha con el formato %(f)s.") % {"v": text, "f": _human_format(fmt)}
            ) from None
    m = _ISO.match(text)
    try:
        if m:
            return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        m = _SLASH.match(text)
        if m:
            a, b, y = int(m.group(1)), int(m.group(2)), int(m.group(3))
            if a == b:
                return dt.date(y, a, b)
            if day_first is None:
                if a > 12 or b > 12:  # the value itself tells (the file disagreed elsewhere)
                    return dt.date(y, b, a) if a > 12 else dt.date(y, a, b)
                raise AmbiguousDate(
                    _("«%(v)s» es ambigua (¿día/mes o mes/día?). Elija el formato de fecha en el mapeo.") % {"v": text}
                )
            return dt.date(y, b, a) if day_first else dt.date(y, a, b)
    except AmbiguousDate:
        raise
    except ValueError:
        raise ValueError(_("«%(v)s» no es una fecha válida.") % {"v": text}) from None
    raise ValueError(_("«%(v)s» no es una fecha (use día/mes/año, mes/día/año o año-mes-día).") % {"v": text})


def _human_format(fmt: str) -> str:
    return fmt.replace("%d", "dd").replace("%m", "mm").replace("%Y", "aaaa")


_CODE_IN_AMOUNT = re.compile(r"\b([A-Za-z]{3})\b")


def parse_money(value, *, decimal_separator: str) -> tuple[Decimal, str]:
    """(amount, currency code found in the cell or "")."""
    if isinstance(value, bool):
        raise ValueError(_("«%(v)s» no es un importe.") % {"v": value})
    if isinstance(value, int | float | Decimal):
        return Decimal(str(value)), ""
    raw = _text(value)
    text = raw.replace("\u00a0", " ")
    code = ""
    m = _CODE_IN_AMOUNT.search(text)
    if m:
        code = m.group(1).upper()
        text = text[: m.start()] + text[m.end() :]
    for sym, sym_code in sorted(CURRENCY_SYMBOLS.items(), key=lambda kv: -len(kv[0])):
        if sym in text:
            text = text.replace(sym, "")
            code = code or (sym_code or "")
    text = text.replace(" ", "").replace("'", "")
    negative = False
    if text.startswith("(") and text.endswith(")"):
        negative, text = True, text[1:-1]
    if text.startswith("-"):
        negative, text = True, text[1:]
    elif text.endswith("-"):
        negative, text = True, text[:-1]
    if not text:
        raise ValueError(_("«%(v)s» no es un importe.") % {"v": raw})
    dec = decimal_separator if decimal_separator in ",." else "."
    if "," in text and "." in text:
        dec = "," if text.rfind(",") > text.rfind(".") else "."
    thousands = "." if dec == "," else ","
    intpart, _sep, frac = text.partition(dec)
    if thousands in intpart:
        if not re.fullmatch(r"\d{1,3}(" + re.escape(thousands) + r"\d{3})+", intpart):
            raise ValueError(
                _("«%(v)s» no es un importe válido (separador decimal «%(d)s»).") % {"v": raw, "d": decimal_separator}
            )
        intpart = intpart.replace(thousands, "")
    if not re.fullmatch(r"\d+", intpart or "0") or (frac and not re.fullmatch(r"\d+", frac)):
        raise ValueError(_("«%(v)s» no es un importe.") % {"v": raw})
    try:
        amount = Decimal(f"{intpart or '0'}.{frac or '0'}")
    except InvalidOperation:
        raise ValueError(_("«%(v)s» no es un importe.") % {"v": raw}) from None
    return (-amount if negative else amount), code


# --- validation --------------------------------------------------------------------------


@dataclass
class Plan:
    """What a file would do: normalised rows with their action, or the errors."""

    kind: str
    rows: list[dict] = field(default_factory=list)  # {"row", "action", ...fields}
    errors: list[dict] = field(default_factory=list)
    total_rows: int = 0
    columns: dict = field(default_factory=dict)  # our field -> their header (to name columns in errors)
    # Clients an invoice file names that do not exist: created with it when the import says so
    # ({"row": first row naming it, "fields": ..., "client": an unsaved Client}), else counted.
    create_clients: bool = False
    segment: Segment | None = None
    new_clients: list[dict] = field(default_factory=list)
    missing_clients: int = 0

    def counts(self) -> dict:
        out = {"created": 0, "updated": 0, "unchanged": 0}
        for r in self.rows:
            out[r["action"]] += 1
        out["payments"] = sum(1 for r in self.rows if r.get("settle"))
        return out

    def details(self) -> dict:
        """For the preview and the result of invoices and ledgers: the clients created (and
        their segment) and the money written, per currency."""
        if self.kind not in (ImportKind.INVOICES, ImportKind.LEDGER):
            return {}
        out = {"clients_created": len(self.new_clients), **self._totals()}
        if self.segment is not None:
            out["segment"] = self.segment.name
        return out

    def _totals(self) -> dict:
        """Money the import writes, per currency: new invoices and settlement payments."""
        invoiced: dict[str, Decimal] = {}
        paid: dict[str, Decimal] = {}
        for r in self.rows:
            if r["action"] == "created":
                cur = r["fields"]["currency"]
                invoiced[cur] = invoiced.get(cur, Decimal(0)) + r["fields"]["amount"]
            if r.get("settle"):
                inv = r.get("invoice")
                if inv is None:
                    cur, amount = r["fields"]["currency"], r.get("pay_amount") or r["fields"]["amount"]
                else:
                    cur, amount = inv.currency, r.get("pay_amount") or inv.amount - inv.amount_paid
                paid[cur] = paid.get(cur, Decimal(0)) + amount
        return {
            "invoiced": {k: str(v) for k, v in sorted(invoiced.items())},
            "paid": {k: str(v) for k, v in sorted(paid.items())},
        }


def _check_columns(kind: str, headers: list[str], columns: dict) -> tuple[dict, list[dict]]:
    errors = []
    seen = {}
    for i, h in enumerate(headers):
        if not h:
            errors.append(_err(1, _("columna %(n)s") % {"n": i + 1}, _("La columna no tiene encabezado.")))
        elif h in seen:
            errors.append(_err(1, h, _("El encabezado «%(h)s» está repetido.") % {"h": h}))
        seen.setdefault(h, i)
    mapping = {k: v for k, v in columns.items() if k != IGNORE_KEY and v}
    known = {f.name: f for f in fields_for(kind)}
    for ours in mapping:
        if ours not in known:
            errors.append(_err(1, mapping[ours], _("El mapeo usa un campo desconocido «%(f)s».") % {"f": ours}))
    for f in fields_for(kind):
        theirs = mapping.get(f.name)
        if theirs and theirs not in seen:
            errors.append(_err(1, theirs, _("Falta la columna «%(h)s» (%(f)s).") % {"h": theirs, "f": f.label}))
        elif not theirs and f.required:
            errors.append(
                _err(
                    1,
                    str(f.label),
                    _("Falta la columna obligatoria «%(f)s»: no hay ninguna columna asignada a ese campo.")
                    % {"f": f.label},
                )
            )
    ignore = columns.get(IGNORE_KEY) or []
    used = set(mapping.values())
    if ignore != "*":
        for h in headers:
            if h and h not in used and h not in ignore:
                errors.append(
                    _err(
                        1,
                        h,
                        _("Columna no reconocida «%(h)s»: asígnela a un campo en el mapeo o márquela para ignorar.")
                        % {"h": h},
                    )
                )
    index = {ours: seen[theirs] for ours, theirs in mapping.items() if theirs in seen and ours in known}
    return index, errors


def validate(
    data: bytes,
    options: Options,
    *,
    name: str = "",
    progress: Callable[[int, int], None] | None = None,
) -> Plan:
    kind = ImportKind(options.kind)
    plan = Plan(kind=kind)
    try:
        headers, body = read_table(data, name=name, encoding=options.encoding)
    except ImportRejected as exc:
        plan.errors = exc.errors
        return plan
    plan.total_rows = len(body)
    columns = options.columns or guess_columns(kind, headers)
    index, plan.errors = _check_columns(kind, headers, columns)
    if options.creates_clients:
        plan.create_clients = True
        plan.segment = segment_named(options.segment) if options.segment else default_segment()
        if plan.segment is None:
            codes = ", ".join(Segment.objects.order_by("position", "name").values_list("code", flat=True))
            plan.errors.append(
                _err(
                    1,
                    "",
                    _("No existe el segmento «%(v)s» para los clientes nuevos (segmentos: %(codes)s).")
                    % {"v": options.segment, "codes": codes or "—"},
                )
            )
    if plan.errors:
        return plan
    specs = {f.name: f for f in fields_for(kind)}
    header_of = {ours: headers[i] for ours, i in index.items()}
    plan.columns = header_of

    def cell(row, ours):
        i = index.get(ours)
        return row[i] if i is not None and i < len(row) else None

    date_fields = [f.name for f in specs.values() if f.kind == "date" and f.name in index]
    day_first = None
    if options.date_format == "auto":
        day_first = detect_day_first(cell(r, f) for _n, r in body for f in date_fields)

    # Parse cells first (pure Python), then look up every referenced key in one query each.
    parsed = []
    # The file's columns only, each with its position and header, once (not per cell): a
    # field without a column is optional (_check_columns) and None in every row.
    mapped = [(ours, spec, index[ours], header_of[ours]) for ours, spec in specs.items() if ours in index]
    unmapped = dict.fromkeys(ours for ours in specs if ours not in index)
    width = len(headers)
    for n, (rownum, row) in enumerate(body, 1):
        values, ok = {"row": rownum, **unmapped}, True
        if len(row) > width and any(_text(c) for c in row[width:]):
            plan.errors.append(_err(rownum, "", _("La fila tiene más celdas que encabezados.")))
            ok = False
        for ours, spec, i, col in mapped:
            raw = row[i] if i < len(row) else None
            text = raw.strip() if type(raw) is str else _text(raw)
            if text == "" and not isinstance(raw, dt.date):
                if spec.required:
                    plan.errors.append(_err(rownum, col, _("Falta el valor de «%(f)s».") % {"f": spec.label}))
                    ok = False
                values[ours] = None
                continue
            try:
                values[ours] = _parse_cell(spec, raw, text, options, day_first, values)
            except ValueError as exc:
                plan.errors.append(_err(rownum, col, str(exc)))
                ok = False
        if ok:
            parsed.append(values)
        if progress and n % PROGRESS_EVERY == 0:
            progress(n, plan.total_rows)
    checker = {
        ImportKind.CLIENTS: _plan_clients,
        ImportKind.INVOICES: _plan_invoices,
        ImportKind.PAYMENTS: _plan_payments,
        ImportKind.LEDGER: _plan_invoices,
    }
    checker[kind](plan, parsed, header_of, specs)
    if progress:
        progress(plan.total_rows, plan.total_rows)
    plan.errors.sort(key=lambda e: (e["row"], e["column"]))
    if plan.errors:
        plan.rows = []
    return plan


def _parse_cell(spec: Field, raw, text: str, options: Options, day_first, values: dict):
    if spec.kind == "date":
        return parse_date(raw, fmt=options.date_format, day_first=day_first)
    if spec.kind == "money":
        amount, code = parse_money(raw, decimal_separator=options.decimal_separator)
        if amount < 0:
            raise ValueError(_("El importe no puede ser negativo (%(v)s).") % {"v": text})
        if spec.name == "amount" and amount == 0:
            raise ValueError(_("El importe debe ser mayor que cero."))
        if amount != amount.quantize(Decimal("0.01")):
            raise ValueError(_("«%(v)s» tiene más de dos decimales.") % {"v": text})
        try:
            validate_amount(amount)
        except ValidationError as exc:
            raise ValueError(exc.messages[0]) from exc
        if code:
            values["_currency_in_amount"] = code
        return amount
    if spec.kind == "bool":
        answer = _norm(text)
        if answer in YES:
            return True
        if answer in NO:
            return False
        raise ValueError(_("«%(v)s» no es sí ni no.") % {"v": text})
    if spec.kind == "int":
        if not re.fullmatch(r"\d+", text):
            raise ValueError(_("«%(v)s» no es un número entero.") % {"v": text})
        return int(text)
    if spec.kind == "code":
        return text.upper() if spec.name != "segment" else text
    return text


def _currency(values: dict, header_of: dict, specs: dict, plan: Plan, default: str | None) -> str | None:
    code = values.get("currency") or values.get("_currency_in_amount") or default
    col = header_of.get("currency") or header_of.get("amount", "")
    if (
        values.get("currency")
        and values.get("_currency_in_amount")
        and values["currency"] != values["_currency_in_amount"]
    ):
        plan.errors.append(
            _err(
                values["row"],
                col,
                _("La moneda %(a)s no coincide con la del importe (%(b)s).")
                % {"a": values["currency"], "b": values["_currency_in_amount"]},
            )
        )
        return None
    if code and code not in iso_currencies():
        plan.errors.append(
            _err(values["row"], col, _("«%(v)s» no es un código de moneda ISO (MXN, EUR, USD).") % {"v": code})
        )
        return None
    return code


def _duplicates(plan: Plan, rows: list[dict], key: str, header: str, what: str) -> list[dict]:
    first, kept = {}, []
    for r in rows:
        k = r[key].upper() if key == "tax_id" else r[key]
        if k in first:
            plan.errors.append(
                _err(
                    r["row"],
                    header,
                    _("%(what)s «%(v)s» está repetido (ya aparece en la fila %(first)s).")
                    % {"what": what, "v": r[key], "first": first[k]},
                )
            )
            continue
        first[k] = r["row"]
        kept.append(r)
    return kept


def _among(model, name: str, values) -> QuerySet:
    """``model`` rows whose ``name`` is one of ``values``, with the values as one array
    parameter: ``name__in`` compiles a placeholder per value, seconds for a 50,000-row file."""
    q = connection.ops.quote_name
    column = f"{q(model._meta.db_table)}.{q(model._meta.get_field(name).column)}"
    return model.objects.filter(RawSQL(f"{column} = ANY(%s)", (list(values),), output_field=BooleanField()))  # noqa: S611 - names from model metadata


def _clients_by_tax_id(tax_ids) -> dict[str, Client]:
    ids = {t.strip().upper() for t in tax_ids if t}
    return {c.tax_id: c for c in _among(Client, "tax_id", ids)} if ids else {}


def _staff_by_username(names) -> dict:
    names = {n for n in names if n}
    if not names:
        return {}
    qs = get_user_model().objects.filter(username__in=names, is_active=True, groups__name__in=GROUP_NAMES.values())
    return {u.username: u for u in qs.distinct()}


def _time_zone_named(value: str) -> str | None:
    """The IANA zone ``value`` names, whatever its case (``america/bogota``), or None."""
    text = value.strip()
    zones = _zones_by_lower()
    return text if text in zones.values() else zones.get(text.lower())


@functools.cache
def _zones_by_lower() -> dict[str, str]:
    return {zone.lower(): zone for zone in zoneinfo.available_timezones()}


def _plan_clients(plan: Plan, rows: list[dict], header_of: dict, specs: dict) -> None:
    rows = _duplicates(plan, rows, "tax_id", header_of["tax_id"], _("El RFC / NIF"))
    existing = _clients_by_tax_id(r["tax_id"] for r in rows)
    segments = {s.code: s for s in Segment.objects.all()}
    staff = _staff_by_username(r.get("collector") for r in rows)
    for r in rows:
        n, tax_id = r["row"], r["tax_id"].strip().upper()
        if len(tax_id) > 32:
            plan.errors.append(_err(n, header_of["tax_id"], _("El RFC / NIF tiene más de 32 caracteres.")))
            continue
        changes = {"tax_id": tax_id, "legal_name": r["legal_name"][:200]}
        seg = segments.get(r["segment"])
        if seg is None:
            plan.errors.append(
                _err(
                    n,
                    header_of["segment"],
                    _("No existe el segmento «%(v)s» (códigos válidos: %(codes)s).")
                    % {"v": r["segment"], "codes": ", ".join(sorted(segments))},
                )
            )
            continue
        changes["segment"] = seg
        if r.get("collector"):
            user = staff.get(r["collector"])
            if user is None:
                plan.errors.append(
                    _err(
                        n,
                        header_of["collector"],
                        _("No existe un usuario del equipo con el nombre «%(v)s».") % {"v": r["collector"]},
                    )
                )
                continue
            changes["collector"] = user
        for name in ("trade_name", "payment_terms_days", "credit_limit", "country", "time_zone"):
            if r.get(name) is not None:
                changes[name] = r[name]
        currency = _currency(r, header_of, specs, plan, None)
        if currency is None and (r.get("currency") or r.get("_currency_in_amount")):
            continue
        if currency:
            changes["currency"] = currency
        place = _checked_place(plan, n, header_of, changes.get("country"), changes.get("time_zone"))
        if place is None:
            continue
        if place[1]:
            changes["time_zone"] = place[1]
        client = existing.get(tax_id)
        if client is None:
            changes.update(_new_client_zone(changes.get("country"), changes.get("time_zone")))
            plan.rows.append({"row": n, "action": "created", "fields": changes})
        else:
            diff = {k: v for k, v in changes.items() if getattr(client, k) != v}
            plan.rows.append({"row": n, "action": "updated" if diff else "unchanged", "client": client, "fields": diff})


def _planned_dispute(plan: Plan, r: dict, header_of: dict, *, due, settled, today):
    """A row's historical dispute as (opened, resolved or None), None without one, or False
    after recording an error. Opened defaults to the due date, or to the day it was resolved
    or today when that comes first (a dispute on an invoice not yet due, or paid before it); a
    dispute on an invoice settled later was resolved then at the latest
    (docs/domain.md#disputes)."""
    opened, resolved = r.get("dispute_opened_on"), r.get("dispute_resolved_on")
    if not (r.get("disputed") or opened or resolved):
        return None
    n = r["row"]
    resolved = resolved or settled
    opened = opened or min(d for d in (due, resolved, today) if d)
    column = header_of.get("dispute_opened_on") or header_of.get("disputed") or header_of.get("dispute_resolved_on", "")
    if opened > today or (resolved and resolved > today):
        plan.errors.append(_err(n, column, _("La disputa tiene una fecha en el futuro.")))
        return False
    if opened < r["issue_date"]:
        plan.errors.append(_err(n, column, _("La disputa se abrió antes de la emisión de la factura.")))
        return False
    if resolved and resolved < opened:
        plan.errors.append(
            _err(n, header_of.get("dispute_resolved_on", column), _("La disputa se resolvió antes de abrirse."))
        )
        return False
    return opened, resolved


def _checked_place(plan: Plan, n: int, header_of: dict, country: str | None, zone: str | None):
    """A row's (country, IANA time zone in its proper case), or None after an error."""
    if country and not re.fullmatch(r"[A-Z]{2}", country):
        plan.errors.append(
            _err(n, header_of["country"], _("«%(v)s» no es un código de país de dos letras.") % {"v": country})
        )
        return None
    if zone:
        named = _time_zone_named(zone)
        if named is None:
            plan.errors.append(
                _err(
                    n,
                    header_of["time_zone"],
                    _("«%(v)s» no es una zona horaria (use un nombre IANA, p. ej. America/Bogota).") % {"v": zone},
                )
            )
            return None
        zone = named
    return country, zone


def _new_client_zone(country: str | None, zone: str | None) -> dict:
    """A new client's hours follow its country when the file names no time zone."""
    if country and not zone:
        return {"time_zone": default_time_zone(country)}
    return {}


def _plan_new_clients(plan: Plan, rows: list[dict], known: dict, header_of: dict) -> dict[str, Client | None]:
    """The clients an invoice file names that do not exist: one unsaved Client per customer id
    (name from the name column or else the id, the import's segment, the currency, country and
    time zone of its first row, client since its first invoice), or None when its first row
    has an error (reported there; its other rows are skipped)."""
    first_rows: dict[str, list[dict]] = {}
    for r in rows:
        key = r["client"].strip().upper()
        if key not in known:
            first_rows.setdefault(key, []).append(r)
    planned: dict[str, Client | None] = {}
    currencies = iso_currencies()
    for key, its_rows in first_rows.items():
        r = its_rows[0]
        n = r["row"]
        planned[key] = None
        if len(key) > 32:
            plan.errors.append(_err(n, header_of["client"], _("El RFC / NIF tiene más de 32 caracteres.")))
            continue
        place = _checked_place(plan, n, header_of, r.get("country"), r.get("time_zone"))
        if place is None:
            continue
        name = next((x["client_name"] for x in its_rows if x.get("client_name")), "") or r["client"].strip()
        fields = {"tax_id": key, "legal_name": name[:200], "segment": plan.segment}
        currency = r.get("currency") or r.get("_currency_in_amount")
        if currency in currencies:
            fields["currency"] = currency
        if place[0]:
            fields["country"] = place[0]
        if place[1]:
            fields["time_zone"] = place[1]
        fields.update(_new_client_zone(*place))
        fields["client_since"] = min(x["issue_date"] for x in its_rows)
        client = Client(**fields)
        plan.new_clients.append({"row": n, "fields": fields, "client": client})
        planned[key] = client
    return planned


def _plan_invoices(plan: Plan, rows: list[dict], header_of: dict, specs: dict) -> None:
    """Invoices, and for the ledger kind one payment per settled invoice with the reference
    ``payment_reference`` (docs/domain.md#imports)."""
    ledger = plan.kind == ImportKind.LEDGER
    rows = _duplicates(plan, rows, "number", header_of["number"], _("El folio"))
    clients = _clients_by_tax_id(r["client"] for r in rows)
    planned = _plan_new_clients(plan, rows, clients, header_of) if plan.create_clients else {}
    existing = {i.number: i for i in _among(Invoice, "number", [r["number"] for r in rows])}
    references = {}
    if ledger:
        refs = [payment_reference(r["number"]) for r in rows if r.get("settled_on")]
        references = {p.reference: p for p in _among(Payment, "reference", refs)}
    missing: set[str] = set()
    today = clock.localdate()
    for r in rows:
        n = r["row"]
        if len(r["number"]) > 40:
            plan.errors.append(_err(n, header_of["number"], _("El folio tiene más de 40 caracteres.")))
            continue
        key = r["client"].strip().upper()
        client = clients.get(key) or planned.get(key)
        if client is None:
            if key not in planned:
                missing.add(key)
                plan.errors.append(
                    _err(
                        n,
                        header_of["client"],
                        _(
                            "No existe un cliente con RFC / NIF «%(v)s». Importe primero los clientes "
                            "o elija «Crear los clientes que faltan»."
                        )
                        % {"v": r["client"]},
                    )
                )
            continue
        currency = _currency(r, header_of, specs, plan, client.currency)
        if currency is None:
            continue
        due = r.get("due_date") or r["issue_date"] + dt.timedelta(days=client.payment_terms_days)
        if due < r["issue_date"]:
            plan.errors.append(
                _err(n, header_of.get("due_date", ""), _("El vencimiento es anterior a la fecha de emisión."))
            )
            continue
        settled = r.get("settled_on")
        if settled and settled > today:
            plan.errors.append(_err(n, header_of["settled_on"], _("La fecha de liquidación está en el futuro.")))
            continue
        if settled and settled < r["issue_date"]:
            plan.errors.append(_err(n, header_of["settled_on"], _("La fecha de liquidación es anterior a la emisión.")))
            continue
        paid = r.get("paid_amount")
        if paid is not None and _paid_amount_error(plan, r, header_of, settled, paid):
            continue
        dispute = _planned_dispute(plan, r, header_of, due=due, settled=settled, today=today)
        if dispute is False:
            continue
        values = {
            "number": r["number"],
            "client": client,
            "issue_date": r["issue_date"],
            "due_date": due,
            "amount": r["amount"],
            "currency": currency,
            "description": (r.get("description") or "")[:255],
        }
        inv = existing.get(r["number"])
        reference = payment_reference(r["number"]) if ledger and settled else ""
        stored_payment = references.get(reference) if reference else None
        if stored_payment is not None and (
            inv is None or stored_payment.client_id != client.pk or stored_payment.currency != currency
        ):
            plan.errors.append(
                _err(
                    n,
                    header_of["settled_on"],
                    _("La referencia %(v)s ya corresponde a otro pago (otro cliente, importe o moneda).")
                    % {"v": reference},
                )
            )
            continue
        if inv is None:
            row = {"row": n, "action": "created", "fields": values, "settle": settled, "dispute": dispute}
            if reference:
                row.update(pay_amount=paid or r["amount"], reference=reference)
            plan.rows.append(row)
            continue
        differ = [
            k
            for k in ("client", "issue_date", "due_date", "amount", "currency")
            if (inv.client_id if k == "client" else getattr(inv, k)) != (client.pk if k == "client" else values[k])
        ]
        if differ:
            labels = ", ".join(header_of.get(k, str(specs[k].label)) for k in differ)
            plan.errors.append(
                _err(
                    n,
                    header_of["number"],
                    _(
                        "La factura %(v)s ya existe con otros datos (%(cols)s); "
                        "una factura registrada no se modifica desde una importación."
                    )
                    % {"v": r["number"], "cols": labels},
                )
            )
            continue
        settle = settled if settled and inv.status in (Invoice.Status.OPEN, Invoice.Status.PARTIALLY_PAID) else None
        if not ledger:
            plan.rows.append(
                {"row": n, "action": "updated" if settle else "unchanged", "invoice": inv, "settle": settle}
            )
            continue
        # The ledger pays what the file says was paid and is not recorded yet; its payment,
        # once recorded, makes the row unchanged.
        due_now = min(paid or inv.amount, inv.amount) - inv.amount_paid
        if stored_payment is not None or not settle or due_now <= 0:
            plan.rows.append({"row": n, "action": "unchanged", "invoice": inv, "settle": None})
            continue
        plan.rows.append(
            {
                "row": n,
                "action": "updated",
                "invoice": inv,
                "settle": settle,
                "pay_amount": due_now,
                "reference": reference,
            }
        )
    plan.missing_clients = len(missing)


def _paid_amount_error(plan: Plan, r: dict, header_of: dict, settled, paid: Decimal) -> bool:
    """A ledger row's paid amount needs a settled date and is at most the invoice's amount."""
    column = header_of["paid_amount"]
    if not settled:
        reason = _("Hay un importe pagado pero no la fecha de liquidación (¿cuándo se pagó?).")
    elif paid <= 0:
        reason = _("El importe pagado debe ser mayor que cero; deje la liquidación en blanco si sigue abierta.")
    elif paid > r["amount"]:
        reason = _("El importe pagado (%(p)s) supera el de la factura (%(a)s).") % {"p": paid, "a": r["amount"]}
    else:
        return False
    plan.errors.append(_err(r["row"], column, reason))
    return True


def _plan_payments(plan: Plan, rows: list[dict], header_of: dict, specs: dict) -> None:
    rows = _duplicates(plan, rows, "reference", header_of["reference"], _("La referencia"))
    clients = _clients_by_tax_id(r["client"] for r in rows)
    existing = {p.reference: p for p in _among(Payment, "reference", [r["reference"] for r in rows])}
    invoices = {i.number: i for i in _among(Invoice, "number", [r["invoice"] for r in rows if r.get("invoice")])}
    balance = {num: inv.amount - inv.amount_paid for num, inv in invoices.items()}
    today = clock.localdate()
    for r in rows:
        n = r["row"]
        if len(r["reference"]) > 80:
            plan.errors.append(_err(n, header_of["reference"], _("La referencia tiene más de 80 caracteres.")))
            continue
        client = clients.get(r["client"].strip().upper())
        if client is None:
            plan.errors.append(
                _err(n, header_of["client"], _("No existe un cliente con RFC / NIF «%(v)s».") % {"v": r["client"]})
            )
            continue
        currency = _currency(r, header_of, specs, plan, client.currency)
        if currency is None:
            continue
        if r["received_on"] > today + dt.timedelta(days=1):
            plan.errors.append(_err(n, header_of["received_on"], _("La fecha de pago está en el futuro.")))
            continue
        pay = existing.get(r["reference"])
        if pay is not None:
            if pay.client_id != client.pk or pay.amount != r["amount"] or pay.currency != currency:
                plan.errors.append(
                    _err(
                        n,
                        header_of["reference"],
                        _("La referencia %(v)s ya corresponde a otro pago (otro cliente, importe o moneda).")
                        % {"v": r["reference"]},
                    )
                )
            else:
                plan.rows.append({"row": n, "action": "unchanged"})
            continue
        alloc = None
        if r.get("invoice"):
            inv = invoices.get(r["invoice"])
            col = header_of["invoice"]
            if inv is None or inv.client_id != client.pk:
                plan.errors.append(_err(n, col, _("No existe la factura %(v)s de este cliente.") % {"v": r["invoice"]}))
                continue
            if inv.currency != currency:
                plan.errors.append(
                    _err(
                        n,
                        col,
                        _("La factura %(v)s está en %(c)s, no en %(p)s.")
                        % {"v": inv.number, "c": inv.currency, "p": currency},
                    )
                )
                continue
            take = min(r["amount"], balance[inv.number])
            balance[inv.number] -= take
            alloc = (inv.pk, take)
        plan.rows.append(
            {
                "row": n,
                "action": "created",
                "client": client,
                "amount": r["amount"],
                "currency": currency,
                "received_on": r["received_on"],
                "reference": r["reference"],
                "alloc": alloc,
            }
        )


# --- writing -----------------------------------------------------------------------------

WRITE_CHUNK = 5000  # rows handed to the bulk services at a time (progress moves per chunk)


def commit(plan: Plan, *, by, progress: Callable[[int], None] | None = None, source: str = "") -> dict:
    """Write a validated plan in one transaction, through the set-based services of
    ``accounts.services_bulk`` (one timeline entry per client, not one per row). A rule
    broken by any row rolls back everything and raises ImportRejected naming that row.

    ``progress(rows_done)`` is called after each chunk, inside the transaction: it must
    report through another channel than this connection (see ``_WriteProgress``)."""
    if plan.errors:
        raise ImportRejected(plan.errors)
    writer = {
        ImportKind.CLIENTS: _write_clients,
        ImportKind.INVOICES: _write_invoices,
        ImportKind.PAYMENTS: _write_payments,
        ImportKind.LEDGER: _write_invoices,
    }[plan.kind]
    with transaction.atomic():
        timeline = services_bulk.TimelineBatch(by=by, source=source)
        _write_new_clients(plan, by, timeline)
        for start in range(0, len(plan.rows), WRITE_CHUNK):
            chunk = plan.rows[start : start + WRITE_CHUNK]
            try:
                writer([r for r in chunk if r["action"] != "unchanged" or r.get("settle")], by, timeline, plan.columns)
            except ValidationError as exc:
                # Not tied to a row (a constraint broken by a concurrent writer).
                raise ImportRejected([_err(chunk[0]["row"], "", "; ".join(exc.messages))]) from exc
            if progress:
                progress(start + len(chunk))
        timeline.flush()
    return plan.counts()


def _rejected(exc: services_bulk.BulkValidationError, rows: list[dict], columns: dict, rename=None) -> ImportRejected:
    """The services' errors by item and field, as errors by row and their column."""
    errors = []
    for index, by_field in exc.item_errors.items():
        for name, messages in by_field.items():
            ours = (rename or {}).get(name, name)
            column = "" if name == NON_FIELD_ERRORS else columns.get(ours, "")
            errors += [_err(rows[index]["row"], column, m) for m in messages]
    return ImportRejected(errors)


def _write_clients(rows: list[dict], by, timeline, columns: dict) -> None:
    payload = [r["fields"] if r["action"] == "created" else {"tax_id": r["client"].tax_id, **r["fields"]} for r in rows]
    try:
        services_bulk.clients_bulk_upsert(by=by, rows=payload, timeline=timeline)
    except services_bulk.BulkValidationError as exc:
        raise _rejected(exc, rows, columns) from exc


def _write_new_clients(plan: Plan, by, timeline) -> None:
    """The clients an invoice file creates, before its invoices (the same transaction); their
    rows then name the stored clients."""
    if not plan.new_clients:
        return
    try:
        result = services_bulk.clients_bulk_upsert(
            by=by, rows=[c["fields"] for c in plan.new_clients], timeline=timeline
        )
    except services_bulk.BulkValidationError as exc:
        raise _rejected(exc, plan.new_clients, plan.columns, {"tax_id": "client", "legal_name": "client_name"}) from exc
    stored = {id(c["client"]): client for c, client in zip(plan.new_clients, result.clients, strict=True)}
    for r in plan.rows:
        fields = r.get("fields")
        if fields is not None and id(fields["client"]) in stored:
            fields["client"] = stored[id(fields["client"])]


def _write_invoices(rows: list[dict], by, timeline, columns: dict) -> None:
    new_rows = [r for r in rows if r["action"] == "created"]
    try:
        created = services_bulk.invoices_bulk_create(
            by=by, invoices=[services_bulk.NewInvoice(**r["fields"]) for r in new_rows], timeline=timeline
        )
    except services_bulk.BulkValidationError as exc:
        raise _rejected(exc, new_rows, columns) from exc
    invoice_of = {}
    for r, inv in zip(new_rows, created, strict=True):
        invoice_of[id(r)] = inv
        r["created_id"] = inv.pk  # what the figures' catch-up adds (``catch_up``)
    settle_rows = [r for r in rows if r.get("settle")]
    payments = []
    for r in settle_rows:
        inv = invoice_of.get(id(r)) or r["invoice"]
        # A ledger row pays what its file says (with its own reference); an invoice row, the balance.
        balance = r.get("pay_amount") or inv.amount - inv.amount_paid
        payments.append(
            services_bulk.NewPayment(
                client=inv.client,
                amount=balance,
                currency=inv.currency,
                received_on=r["settle"],
                reference=r.get("reference", ""),
                allocations=[services_bulk.AllocationRequest(invoice_id=inv.pk, amount=balance)],
                notes=_("Liquidación de la factura %(n)s (importada)") % {"n": inv.number},
            )
        )
    try:
        services_bulk.payments_bulk_record(by=by, payments=payments, timeline=timeline)
    except services_bulk.BulkValidationError as exc:
        raise _rejected(exc, settle_rows, columns, {"received_on": "settled_on", "allocations": "settled_on"}) from exc
    _write_disputes([(invoice_of[id(r)], *r["dispute"]) for r in new_rows if r.get("dispute")], by)


def _write_disputes(rows: list[tuple[Invoice, dt.date, dt.date | None]], by) -> None:
    """Historical disputes of new invoices: one Dispute each (reason *otro*), resolved on its
    date — a resolved one was collected in full (*rechazada*), an open one puts its invoice in
    dispute now, through the ledger's own service (docs/domain.md#disputes)."""
    if not rows:
        return
    disputes = [
        Dispute(
            client=inv.client,
            reason=DisputeReason.OTHER,
            description=_("Disputa importada con la factura %(n)s.") % {"n": inv.number},
            owner_id=inv.client.collector_id,
            opened_on=opened,
            opened_by=actor(by),
            status=DisputeStatus.RESOLVED if resolved else DisputeStatus.OPEN,
            resolution=DisputeResolution.REJECTED if resolved else "",
            resolution_notes=_("Importada: resuelta el %(d)s.") % {"d": resolved.isoformat()} if resolved else "",
            resolved_on=resolved,
        )
        for inv, opened, resolved in rows
    ]
    Dispute.objects.bulk_create(disputes)
    through = Dispute.invoices.through
    through.objects.bulk_create(
        [through(dispute_id=d.pk, invoice_id=inv.pk) for d, (inv, _o, _r) in zip(disputes, rows, strict=True)]
    )
    still_open: dict[int, list[Invoice]] = {}
    for inv, _opened, resolved in rows:
        if resolved is None:
            still_open.setdefault(inv.client_id, []).append(inv)
    for invoices in still_open.values():
        ledger.invoices_set_disputed(
            by=by, client=invoices[0].client, invoices=invoices, disputed=True, reason=_("Disputa importada")
        )


def _write_payments(rows: list[dict], by, timeline, columns: dict) -> None:
    payments = [
        services_bulk.NewPayment(
            client=r["client"],
            amount=r["amount"],
            currency=r["currency"],
            received_on=r["received_on"],
            reference=r["reference"],
            allocations=[services_bulk.AllocationRequest(invoice_id=r["alloc"][0], amount=r["alloc"][1])]
            if r["alloc"]
            else None,
        )
        for r in rows
    ]
    try:
        services_bulk.payments_bulk_record(by=by, payments=payments, timeline=timeline)
    except services_bulk.BulkValidationError as exc:
        raise _rejected(exc, rows, columns, {"allocations": "invoice"}) from exc


def history_of(plan: Plan) -> tuple[dt.date | None, set[int]]:
    """The earliest ledger date an import wrote (an invoice's issue date, a settlement or a
    payment) and the clients it touched: what the figures must catch up with."""
    dates: list[dt.date] = []
    clients: set[int] = set()
    for r in plan.rows:
        if r["action"] == "unchanged" and not r.get("settle"):
            continue
        if plan.kind in (ImportKind.INVOICES, ImportKind.LEDGER):
            fields = r.get("fields")
            invoice = r.get("invoice")
            dates.append(fields["issue_date"] if fields else invoice.issue_date)
            clients.add(fields["client"].pk if fields else invoice.client_id)
            if r.get("settle"):
                dates.append(r["settle"])
        elif plan.kind == ImportKind.PAYMENTS:
            dates.append(r["received_on"])
            clients.add(r["client"].pk)
    return (min(dates) if dates else None), clients


def catch_up(plan: Plan) -> dict:
    """After an import of invoices or payments: the month-end snapshots of every month it
    reaches into (trend and roll rates for the imported history), the profiles and the
    worklist's ranking facts, for the clients it touched only (the others' figures do not
    depend on it), as of today. Returns what was done, for the job's summary."""
    since, clients = history_of(plan)
    if since is None:
        return {}
    # Only new invoices (with their own settlements and disputes): the month-end closes add
    # their part; else the touched clients' rows are computed again.
    written = [r for r in plan.rows if r["action"] != "unchanged" or r.get("settle")]
    new_only = plan.kind in (ImportKind.INVOICES, ImportKind.LEDGER) and all(r["action"] == "created" for r in written)
    months = dashboard_jobs.snapshot_history(
        since=since,
        client_ids=sorted(clients),
        new_invoice_ids=[r["created_id"] for r in written] if new_only else None,
    )
    if months:
        summaries.summaries_forget()  # the trend changed: no stored figures without it
    today = clock.localdate()
    computed = profile_jobs.compute_profiles(today=today, client_ids=sorted(clients))
    # The worklist's ranking facts of the clients the import (and their new profiles) touched,
    # now rather than at the next 10-minute refresh: until then every worklist would recompute
    # them all as it reads (docs/domain.md#worklist-ranking).
    ranked = worklist_jobs.worklist_rank_refresh_touched(today=today)
    return {"snapshot_months": len(months), "profiles": computed["clients"], "worklist_ranked": ranked["clients"]}


class _WriteProgress:
    """Rows written so far, stored through a second database connection in autocommit, so
    the job page sees the bar move while the import's own transaction is still open (and a
    rollback still writes nothing of the import itself).

    Only when the import does not run inside an outer transaction: a caller's open
    transaction may hold the job row's lock, which the second connection would wait for. Then
    the page shows an indeterminate bar. Best effort: a failing progress write never fails
    the import."""

    def __init__(self, job: ImportJob):
        self.job_id = job.pk
        self.conn = None
        main = connections[DEFAULT_DB_ALIAS]
        if not main.in_atomic_block:
            self.conn = type(main)(copy.deepcopy(main.settings_dict), alias=f"{main.alias}-import-progress")
            table = main.ops.quote_name(ImportJob._meta.db_table)
            self._sql = f'UPDATE {table} SET "processed_rows" = %s WHERE "id" = %s'  # noqa: S608 - model's table
        self.live = self.conn is not None

    def __call__(self, done: int) -> None:
        if self.conn is None:
            return
        try:
            with self.conn.cursor() as cursor:
                cursor.execute("SET lock_timeout = '2s'")
                cursor.execute(self._sql, [done, self.job_id])
        except DatabaseError:
            self.close()

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


# --- jobs ------------------------------------------------------------------------------


def imports_dir() -> Path:
    path = Path(settings.MEDIA_ROOT) / "imports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def job_file(job: ImportJob) -> Path:
    path = Path(job.file_path)
    return path if path.is_absolute() else Path(settings.MEDIA_ROOT) / path


def job_options(job: ImportJob) -> Options:
    clients = job.summary.get(CLIENTS_KEY) or {}
    choice = {"create_clients": bool(clients.get("create")), "segment": clients.get("segment") or ""}
    if job.mapping_id:
        options = Options.from_mapping(job.mapping)
        options.create_clients, options.segment = choice["create_clients"], choice["segment"]
        return options
    inline = job.summary.get("options") or {}
    return Options(
        kind=job.kind,
        columns=inline.get("columns") or {},
        date_format=inline.get("date_format", "auto"),
        decimal_separator=inline.get("decimal_separator", "."),
        encoding=inline.get("encoding", "auto"),
        **choice,
    )


# The job's choice about clients its file names that do not exist ({"create": bool, "segment":
# code}), kept across the dry run and the import like the file's facts.
CLIENTS_KEY = "clients"


def clients_choice(*, create: bool, segment: str = "") -> dict:
    return {"create": bool(create), "segment": segment or ""}


def job_create(
    *,
    by,
    kind: str,
    file_name: str,
    data: bytes,
    mapping: ImportMapping | None = None,
    options: Options | None = None,
    dry_run: bool = True,
    path: str | None = None,
    facts: dict | None = None,
    clients: dict | None = None,
) -> ImportJob:
    """Store the upload (or point at ``path``) and record a pending job, with the facts the
    pages show (``file_facts``: given by the upload form, which has read them already)."""
    if facts is None:
        facts = _facts_or_errors(data or Path(path).read_bytes(), name=file_name, encoding=_encoding(options, mapping))
    if path is None:
        stamp = clock.now().strftime("%Y%m%d%H%M%S%f")
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", os.path.basename(file_name))[-100:]
        target = imports_dir() / f"{stamp}_{safe}"
        target.write_bytes(data)
        path = str(target.relative_to(settings.MEDIA_ROOT))
    summary = {key: facts[key] for key in FILE_FACTS}
    if clients is not None:
        summary[CLIENTS_KEY] = clients
    if options is not None and mapping is None:
        summary["options"] = {
            "columns": options.columns,
            "date_format": options.date_format,
            "decimal_separator": options.decimal_separator,
            "encoding": options.encoding,
        }
    return ImportJob.objects.create(
        kind=kind,
        mapping=mapping,
        file_name=file_name[:255],
        file_path=path,
        dry_run=dry_run,
        created_by=actor(by),
        summary=summary,
    )


def _encoding(options: Options | None, mapping: ImportMapping | None) -> str:
    return (options.encoding if options else mapping.encoding if mapping else "auto") or "auto"


def _facts_or_errors(data: bytes, *, name: str, encoding: str) -> dict:
    try:
        return file_facts(data, name=name, encoding=encoding)
    except ImportRejected as exc:
        return {"headers": [], "rows": 0, "read_errors": exc.errors}


def _kept_facts(job: ImportJob) -> dict:
    """The file's facts (FILE_FACTS) and the choice about clients, kept across every rewrite
    of the job's summary."""
    return {key: job.summary[key] for key in (*FILE_FACTS, CLIENTS_KEY) if key in job.summary}


def _stored_facts(job: ImportJob) -> dict:
    if "headers" not in job.summary:  # a job from before the facts were stored: read once
        facts = _facts_or_errors(job_file(job).read_bytes(), name=job.file_name, encoding=job_options(job).encoding)
        _set(job, summary={**job.summary, **facts})
    return job.summary


def count_rows(job: ImportJob) -> int:
    """An estimate of data rows, to choose inline or background (stored at upload)."""
    return _stored_facts(job).get("rows", 0)


def _set(job: ImportJob, **values) -> None:
    for k, v in values.items():
        setattr(job, k, v)
    ImportJob.objects.filter(pk=job.pk).update(**values)


ERRORS_SHOWN = 1000  # on the job page and in the job row; every error is in the CSV


def errors_path(job: ImportJob) -> Path:
    """Every error of a rejected job, as CSV (row, column, reason), beside the uploads."""
    return imports_dir() / f"job-{job.pk}-errores.csv"


def _errors_file(job: ImportJob, errors: list[dict]) -> dict:
    """Write every error to ``errors_path`` (cells made inert: a spreadsheet opens it)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([_("Fila"), _("Columna"), _("Motivo")])
    for e in errors:
        writer.writerow([e["row"], inert_cell(e.get("column") or ""), inert_cell(e["reason"])])
    path = errors_path(job)
    path.write_text(buffer.getvalue(), encoding="utf-8-sig")
    return {"errors_file": str(path.relative_to(settings.MEDIA_ROOT))}


@contextlib.contextmanager
def _no_cyclic_gc():
    """The cyclic garbage collector paused while a file is validated or written. Those steps
    hold every row of the file (hundreds of thousands of dicts, model instances and rows for
    the writer), and the collector, triggered by the allocations, walks them all again and
    again: a fifth of the steps' CPU for 50,000 rows, for garbage they hardly make (what
    they drop, reference counting frees). It runs again as usual once the step is over."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def run_job(job: ImportJob) -> ImportJob:
    """Validate (and, unless a dry run, write) one job; the job row tells the outcome."""
    started = time.monotonic()
    inline = job.summary.get("options")
    options = job_options(job)
    base = {**_kept_facts(job), **({"options": inline} if inline else {})}
    _set(job, status=ImportJob.Status.RUNNING, processed_rows=0, errors=[], summary={**base, "phase": "validating"})
    try:
        data = job_file(job).read_bytes()

        def progress(done, total):
            _set(job, processed_rows=done, total_rows=total)

        with _no_cyclic_gc():
            plan = validate(data, options, name=job.file_name, progress=progress)
        if plan.errors:
            _set(
                job,
                status=ImportJob.Status.REJECTED,
                errors=plan.errors[:ERRORS_SHOWN],
                total_rows=plan.total_rows,
                summary={
                    **base,
                    "error_count": len(plan.errors),
                    "missing_clients": plan.missing_clients,
                    **_errors_file(job, plan.errors),
                },
                finished_at=clock.now(),
            )
            return job
        counts = {**plan.counts(), **plan.details()}
        if job.dry_run:
            _set(
                job,
                status=ImportJob.Status.DONE,
                processed_rows=plan.total_rows,
                total_rows=plan.total_rows,
                summary={**base, **counts, "dry_run": True, "seconds": round(time.monotonic() - started, 2)},
                finished_at=clock.now(),
            )
            return job
        write_progress = _WriteProgress(job)
        restart = {"processed_rows": 0} if write_progress.live else {}  # the bar starts again for the write
        _set(job, **restart, summary={**base, "phase": "writing", "live_progress": write_progress.live})
        writing = time.monotonic()
        details = plan.details()  # what the plan writes, before the write moves any balance
        try:
            # A background job acts for the manager who started it (audit history: who).
            with audit.acting_as(job.created_by), _no_cyclic_gc():
                counts = commit(plan, by=job.created_by, progress=write_progress, source=job.file_name)
        finally:
            write_progress.close()
        _set(job, summary={**base, "phase": "figures", "live_progress": write_progress.live})
        caught_up = catch_up(plan)
        done = time.monotonic()
        _set(
            job,
            status=ImportJob.Status.DONE,
            processed_rows=plan.total_rows,
            total_rows=plan.total_rows,
            summary={
                **base,
                **counts,
                **details,
                **caught_up,
                "dry_run": False,
                "seconds": round(done - started, 2),
                "write_seconds": round(done - writing, 2),
                "live_progress": write_progress.live,
            },
            finished_at=clock.now(),
        )
    except ImportRejected as exc:
        _set(
            job,
            status=ImportJob.Status.REJECTED,
            errors=exc.errors[:ERRORS_SHOWN],
            summary={**base, "error_count": len(exc.errors), **_errors_file(job, exc.errors)},
            finished_at=clock.now(),
        )
    except Exception as exc:
        _set(
            job,
            status=ImportJob.Status.FAILED,
            errors=[_err(0, "", _("Error inesperado: %(e)s") % {"e": exc})],
            summary=base,
            finished_at=clock.now(),
        )
        raise
    return job


def run_import_job(job_id: int) -> str:
    """The Celery task body (registered as ``cobranza.run_import``): run one job by id."""
    # Claimed with a conditional UPDATE: two workers handed the same job at once (a redelivery
    # while the first still runs) cannot both run it; the loser returns (docs/scaling.md).
    claimed = ImportJob.objects.filter(pk=job_id, status=ImportJob.Status.PENDING).update(
        status=ImportJob.Status.RUNNING
    )
    job = ImportJob.objects.select_related("mapping", "created_by").get(pk=job_id)
    if not claimed:
        return job.status  # delivered twice: the first delivery already ran it
    return run_job(job).status


def load_mapping_arg(value: str, kind: str) -> tuple[ImportMapping | None, Options | None]:
    """``--mapping``: a saved mapping's name, or a JSON file (either just the columns, or
    ``{"columns": {...}, "date_format": ..., "decimal_separator": ..., "encoding": ...}``)."""
    mapping = ImportMapping.objects.filter(name=value, kind=kind).first()
    if mapping is not None:
        return mapping, None
    path = Path(value)
    if not path.is_file():
        raise ValueError(
            _("No existe un mapeo «%(v)s» para %(k)s ni un archivo JSON con ese nombre.") % {"v": value, "k": kind}
        )
    spec = json.loads(path.read_text(encoding="utf-8"))
    if "columns" not in spec:
        spec = {"columns": spec}
    return None, Options(
        kind=kind,
        columns=spec["columns"],
        date_format=spec.get("date_format", "auto"),
        decimal_separator=spec.get("decimal_separator", "."),
        encoding=spec.get("encoding", "auto"),
    )


def mapping_save(*, by, name: str, kind: str, options: Options) -> ImportMapping:
    """Create or replace the saved mapping of one source (name) for one kind."""
    mapping, _created = ImportMapping.objects.update_or_create(
        name=name.strip(),
        kind=kind,
        defaults={
            "columns": options.columns,
            "date_format": options.date_format,
            "decimal_separator": options.decimal_separator,
            "encoding": options.encoding,
            "created_by": actor(by),
            "updated_at": clock.now(),
        },
    )
    return mapping


def job_restart(
    job: ImportJob,
    *,
    dry_run: bool,
    mapping: ImportMapping | None = None,
    options: Options | None = None,
    clients: dict | None = None,
) -> ImportJob:
    """Queue the same file again (a new mapping, a choice about missing clients, or the
    commit after a dry run)."""
    summary = _kept_facts(job)
    if clients is not None:
        summary[CLIENTS_KEY] = clients
    if options is not None and mapping is None:
        summary["options"] = {
            "columns": options.columns,
            "date_format": options.date_format,
            "decimal_separator": options.decimal_separator,
            "encoding": options.encoding,
        }
    elif mapping is None and not job.mapping_id and "options" in job.summary:
        summary["options"] = job.summary["options"]
    _set(
        job,
        dry_run=dry_run,
        status=ImportJob.Status.PENDING,
        processed_rows=0,
        errors=[],
        summary=summary,
        finished_at=None,
        **({"mapping": mapping} if mapping is not None else {}),
    )
    return job


def file_headers(job: ImportJob) -> tuple[list[str], list[dict]]:
    """Their headers (for the mapping form), or the errors reading the file: as stored at
    upload, never by parsing the file again."""
    facts = _stored_facts(job)
    return facts.get("headers") or [], facts.get("read_errors") or []
