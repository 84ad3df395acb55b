"""Import clients, invoices or payments from an accounting export (CSV or XLSX).

    python manage.py import_ledger facturas.csv --kind invoices --mapping "Contpaq" --dry-run
    python manage.py import_ledger pagos.xlsx --kind payments --mapping mapeo.json --json

Runs in this process (no worker needed), as the system user. Exit code 1 when the file is
rejected (nothing written) and the errors are printed; 0 otherwise.
"""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from cobranza.imports import services as imports
from cobranza.models import ImportJob, ImportKind


class Command(BaseCommand):
    help = "Importa clientes, facturas o pagos desde un CSV o XLSX de contabilidad."

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--kind", required=True, choices=ImportKind.values)
        parser.add_argument("--mapping", help="nombre de un mapeo guardado o ruta a un archivo JSON")
        parser.add_argument("--dry-run", action="store_true", help="validar y resumir sin escribir nada")
        parser.add_argument("--json", action="store_true", help="salida en JSON")

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
        job = imports.job_create(
            by=None,
            kind=opts["kind"],
            file_name=path.name,
            data=b"",
            mapping=mapping,
            options=options,
            dry_run=opts["dry_run"],
            path=str(path),
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
            self.stdout.write(
                f"{job.file_name}: {job.total_rows} filas. {verb}: {s.get('created', 0)}, "
                f"actualizados: {s.get('updated', 0)}, sin cambios: {s.get('unchanged', 0)}, "
                f"pagos de liquidación: {s.get('payments', 0)}"
                + (" (simulación: no se escribió nada)" if job.dry_run else "")
            )
        else:
            self.stderr.write(f"{job.file_name}: {job.get_status_display()}")
            for e in job.errors:
                self.stderr.write(f"  fila {e['row']}, columna «{e['column']}»: {e['reason']}")
        if job.status != ImportJob.Status.DONE:
            raise SystemExit(1)
