"""Import clients, invoices or payments from an accounting export (CSV or XLSX), or all three
from one invoice export with a settled-date column (``--kind ledger``).

    python manage.py import_ledger facturas.csv --kind invoices --mapping "Contpaq" --dry-run
    python manage.py import_ledger facturas.csv --kind invoices --create-clients --segment regular
    python manage.py import_ledger historial.csv --kind ledger --segment "Cuenta clave"
    python manage.py import_ledger pagos.xlsx --kind payments --mapping mapeo.json --json

Runs in this process (no worker needed), as the system user. Exit code 1 when the file is
rejected (nothing written) and the errors are printed; 0 otherwise.
"""

import argparse
import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import translation

from cobranza.imports import services as imports
from cobranza.models import ImportJob, ImportKind


def _fields_help() -> str:
    """Each kind's fields (name, whether required, the headers recognised without a mapping)."""
    lines = []
    with translation.override(settings.LANGUAGE_CODE):
        for kind in ImportKind.values:
            lines.append(f"  --kind {kind}:")
            for f in imports.fields_for(kind):
                need = "obligatorio" if f.required else "opcional"
                lines.append(f"    {f.name:<20} {f.label} ({need}; {f.kind}) — encabezados: {', '.join(f.aliases)}")
    return "\n".join(lines)


EPILOG = """\
Sin --mapping, las columnas se reconocen por su encabezado, en español o inglés (sin
importar acentos ni mayúsculas). Con --mapping, el nombre de un mapeo guardado en la página
de importación, o un archivo JSON: nuestro campo -> su encabezado, y opciones.

Ejemplo de mapeo (facturas.json):

  {{
    "columns": {{
      "number": "Invoice No",
      "client": "Customer ID",
      "issue_date": "Invoice Date",
      "due_date": "Due Date",
      "amount": "Amount",
      "currency": "Currency",
      "settled_on": "Date Paid",
      "_ignore": ["Sales Rep"]
    }},
    "date_format": "%m/%d/%Y",
    "decimal_separator": ".",
    "encoding": "auto"
  }}

  "_ignore": encabezados que no se importan ("*": todos los que no estén asignados).
  "date_format": auto | %d/%m/%Y | %m/%d/%Y | %Y-%m-%d (auto: por los valores del archivo;
  una fecha ambigua como 01/02/2013 se rechaza si el archivo no aclara el orden).
  "decimal_separator": "." o ",".  "encoding": auto | utf-8 | latin-1.

Clientes nuevos: con --kind invoices y --create-clients, los clientes que el archivo nombra
(columna del RFC / NIF) y no existen se crean junto con sus facturas, en la misma transacción:
razón social de la columna del nombre del cliente (o su RFC / NIF), país y zona horaria si hay
columnas para ellos, en el segmento de --segment (código o nombre; por omisión «regular», o el
primero). Sin --create-clients, sus filas son errores.

--kind ledger (historial de facturas): una fila por factura con RFC / NIF del cliente (y su
nombre), folio, emisión, vencimiento, importe, moneda, fecha de liquidación (en blanco: sigue
abierta), importe pagado (en blanco: el importe completo si está liquidada) y, si las hay, las
columnas de disputa. Crea los clientes que faltan (como --create-clients), las facturas y un
pago por factura liquidada, con fecha de la liquidación, aplicado a esa factura y con la
referencia PAGO-<folio>. Importar el mismo archivo otra vez no cambia nada (por folio y por
referencia).

Campos de cada tipo:
{fields}

Un archivo rechazado no escribe nada: se listan fila, columna y motivo de cada error (todos,
también en el CSV que se indica al final).
"""


class Command(BaseCommand):
    help = (
        "Importa clientes, facturas o pagos desde un CSV o XLSX de contabilidad, o los tres desde "
        "un historial de facturas con fecha de liquidación (--kind ledger)."
    )

    def create_parser(self, prog_name, subcommand, **kwargs):
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.formatter_class = argparse.RawDescriptionHelpFormatter
        parser.epilog = EPILOG.format(fields=_fields_help())
        return parser

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--kind", required=True, choices=ImportKind.values)
        parser.add_argument("--mapping", help="nombre de un mapeo guardado o ruta a un archivo JSON")
        parser.add_argument("--dry-run", action="store_true", help="validar y resumir sin escribir nada")
        parser.add_argument("--json", action="store_true", help="salida en JSON")
        parser.add_argument(
            "--create-clients",
            action="store_true",
            help="facturas: crear los clientes que el archivo nombra y no existen (ledger: siempre)",
        )
        parser.add_argument(
            "--segment", help="segmento de los clientes nuevos (código o nombre; por omisión «regular» o el primero)"
        )

    def handle(self, *args, **opts):
        path = Path(opts["file"]).resolve()
        if not path.is_file():
            raise CommandError(f"No existe el archivo {path}")
        mapping, options = None, None
        if opts["mapping"]:
            try:
                mapping, options = imports.load_mapping_arg(opts["mapping"], opts["kind"])
            except (ValueError, json.JSONDecodeError) as exc:
                raise CommandError(str(exc)) from exc
        clients = None
        if opts["create_clients"] or opts["segment"] or opts["kind"] == ImportKind.LEDGER:
            if opts["kind"] not in (ImportKind.INVOICES, ImportKind.LEDGER):
                raise CommandError("--create-clients y --segment sólo valen con --kind invoices o ledger.")
            segment = imports.segment_named(opts["segment"]) if opts["segment"] else imports.default_segment()
            if segment is None:
                raise CommandError(f"No existe el segmento «{opts['segment'] or ''}».")
            clients = imports.clients_choice(create=bool(opts["create_clients"]), segment=segment.code)
        job = imports.job_create(
            by=None,
            kind=opts["kind"],
            file_name=path.name,
            data=b"",
            mapping=mapping,
            options=options,
            dry_run=opts["dry_run"],
            path=str(path),
            clients=clients,
        )
        job = imports.run_job(job)
        result = {
            "job": job.pk,
            "status": job.status,
            "dry_run": job.dry_run,
            "total_rows": job.total_rows,
            "summary": {k: v for k, v in job.summary.items() if k != "options" and k not in imports.FILE_FACTS},
            "errors": job.errors,
        }
        if opts["json"]:
            self.stdout.write(json.dumps(result, ensure_ascii=False, indent=2, default=str))
        elif job.status == ImportJob.Status.DONE:
            s = result["summary"]
            verb = "Se crearían" if job.dry_run else "Creados"
            clients = ""
            if s.get("clients_created"):
                clients = f"clientes nuevos: {s['clients_created']} (segmento {s.get('segment', '')}), "
            self.stdout.write(
                f"{job.file_name}: {job.total_rows} filas. {clients}{verb}: {s.get('created', 0)}, "
                f"actualizados: {s.get('updated', 0)}, sin cambios: {s.get('unchanged', 0)}, "
                f"pagos de liquidación: {s.get('payments', 0)}"
                + (" (simulación: no se escribió nada)" if job.dry_run else "")
            )
        else:
            self.stderr.write(f"{job.file_name}: {job.get_status_display()}")
            for e in job.errors:
                self.stderr.write(f"  fila {e['row']}, columna «{e['column']}»: {e['reason']}")
            total = job.summary.get("error_count", len(job.errors))
            if total > len(job.errors):
                self.stderr.write(f"  … y {total - len(job.errors)} errores más ({total} en total).")
            if job.summary.get("missing_clients"):
                self.stderr.write(
                    f"  {job.summary['missing_clients']} clientes no existen: --create-clients los crea "
                    "(--segment elige su segmento)."
                )
            if job.summary.get("errors_file"):
                self.stderr.write(f"  Todos los errores: {Path(settings.MEDIA_ROOT) / job.summary['errors_file']}")
        if job.status != ImportJob.Status.DONE:
            raise SystemExit(1)
