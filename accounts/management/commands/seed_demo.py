"""``python manage.py seed_demo``: demo users and a believable collections portfolio.

See ``accounts.demo`` for what is generated and why it writes through the ledger's bulk writer
(``accounts.services_bulk.ledger_bulk_insert``) rather than the single-row services (speed).
"""

import datetime as dt

from django.core.management.base import BaseCommand, CommandError
from django.utils import translation

from accounts import clock, demo
from accounts.extensions import demo_steps
from accounts.models import Client


class Command(BaseCommand):
    help = (
        "Create the demo users (password in accounts.demo.DEMO_PASSWORD) and a demo portfolio: clients, "
        "contacts, ~10 invoices per client over 18 months, payments and a collections timeline. "
        "Deterministic for a given --seed and --today."
    )

    def add_arguments(self, parser):
        parser.add_argument("--clients", type=int, default=demo.DEFAULT_CLIENTS, help="clients to create (200)")
        parser.add_argument("--seed", type=int, default=demo.DEFAULT_SEED, help="random seed (42)")
        parser.add_argument(
            "--today",
            type=dt.date.fromisoformat,
            default=None,
            help="the day the history ends (YYYY-MM-DD; default: today). Same seed + same day = same data.",
        )
        parser.add_argument(
            "--if-empty", action="store_true", help="do nothing if any client exists (for `make run`, every start)"
        )
        parser.add_argument(
            "--reset", action="store_true", help="delete every client and its ledger rows first, then seed"
        )
        parser.add_argument("--chunk-size", type=int, default=demo.CHUNK_SIZE, help="clients per transaction (2000)")

    def handle(self, *args, **options):
        n = options["clients"]
        if n < 1:
            raise CommandError("--clients must be at least 1.")
        if options["chunk_size"] < 1:
            raise CommandError("--chunk-size must be at least 1.")
        if options["if_empty"] and options["reset"]:
            raise CommandError("--if-empty and --reset contradict each other: use one.")
        existing = Client.objects.count()
        if existing:
            if options["if_empty"]:
                self.stdout.write(f"seed_demo: {existing:,} clients already exist; nothing to do (--if-empty).")
                return
            if not options["reset"]:
                raise CommandError(
                    f"There are already {existing:,} clients. Use --reset to delete them (and their invoices, "
                    "payments and timeline) and seed again, or --if-empty to skip."
                )
            self.stdout.write(f"Deleting {existing:,} clients and their ledger rows (--reset)…")
            demo.reset_ledger(self.stdout.write)

        phases = demo.Phases(self.stdout.write, verbose=options["verbosity"] >= 2)
        today = options["today"] or clock.localdate()
        self.stdout.write(f"Seeding {n:,} clients (seed {options['seed']}, history up to {today - dt.timedelta(1)})…")
        # Timeline texts and money formats are written in Spanish, the product's language.
        with translation.override("es"):
            try:
                summary = demo.seed(
                    clients=n,
                    seed=options["seed"],
                    today=today,
                    chunk_size=options["chunk_size"],
                    stdout=self.stdout.write,
                    phases=phases,
                )
            except RuntimeError as exc:
                raise CommandError(str(exc)) from exc

            # Other apps' demo state on top of the ledger (accounts.extensions).
            for step in demo_steps():
                line = step(today=today, seed=options["seed"], stdout=self.stdout.write, phases=phases)
                if line:
                    self.stdout.write(f"  {line}")

        self.stdout.write(self.style.SUCCESS(f"Done in {summary.elapsed:.1f} s: {summary.line()}."))
        self.stdout.write("  payer profiles: " + _counts(summary.profiles))
        self.stdout.write("  client statuses: " + _counts(summary.client_statuses))
        self.stdout.write("  invoice statuses: " + _counts(summary.invoice_statuses))
        if options["verbosity"] >= 2:
            self.stdout.write("  time per phase: " + "; ".join(phases.lines()))
        users = ", ".join(u.username for u in demo.DEMO_USERS)
        self.stdout.write(f"  demo users: {users} — password «{demo.DEMO_PASSWORD}»")


def _counts(counter) -> str:
    return ", ".join(f"{key} {value:,}" for key, value in counter.most_common())
