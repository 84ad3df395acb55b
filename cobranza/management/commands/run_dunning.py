import datetime as dt
import json

from django.core.management.base import BaseCommand, CommandError

from cobranza.engine import jobs as engine


class Command(BaseCommand):
    help = "Plan the dunning notices due today and send those that may go out now."

    def add_arguments(self, parser):
        parser.add_argument("--today", help="Run as if today were YYYY-MM-DD (at 10:00 local time).")
        parser.add_argument("--dry-run", action="store_true", help="Plan in a rolled-back transaction; send nothing.")
        parser.add_argument("--json", action="store_true", dest="as_json", help="Print a machine-readable summary.")

    def handle(self, *args, today=None, dry_run=False, as_json=False, **options):
        day = None
        if today:
            try:
                day = dt.date.fromisoformat(today)
            except ValueError as exc:
                raise CommandError(f"--today must be YYYY-MM-DD, not {today!r}") from exc
        summary = engine.run(today=day, dry_run=dry_run)
        if as_json:
            self.stdout.write(json.dumps(summary, ensure_ascii=False, indent=2))
            return
        planned = summary["planned"]
        label = " (simulación: no se escribió ni envió nada)" if dry_run else ""
        self.stdout.write(f"Cobranza del {summary['today']}{label}")
        self.stdout.write(
            f"  Avisos programados: {planned['notices_planned']} ({planned['invoices_listed']} facturas)"
            + "".join(f"\n    {channel}: {n}" for channel, n in planned["by_channel"].items())
        )
        # Pacing (docs/domain.md#pacing): one step per client and day, the firmest.
        self.stdout.write(
            f"  Pasos reemplazados por uno más firme: {planned['superseded']} "
            f"({planned['superseded_invoices']} facturas; no se enviarán)"
        )
        self.stdout.write(
            f"  En espera por el ritmo de contacto: {planned['held_clients']} clientes, "
            f"{planned['waiting']} pasos detrás del más firme de su cliente"
        )
        d = summary["dispatched"]
        self.stdout.write(
            f"  Enviados: {d['sent']}  Aplazados: {d['deferred']}  Omitidos: {d['skipped']}  "
            f"Fallidos: {d['failed']}  Por reintentar: {d['retry']}"
        )
        self.stdout.write(f"  Clientes escalados a «En cobranza»: {summary['escalated']}")
        for row in summary["reasons"]:
            self.stdout.write(f"    [{row['outcome']}] {row['count']} × {row['reason']}")
