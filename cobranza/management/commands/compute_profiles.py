import datetime as dt
import json

from django.core.management.base import BaseCommand, CommandError

from accounts import clock
from cobranza.models import Profile
from cobranza.profiles import jobs as profiles


class Command(BaseCommand):
    help = (
        "Compute every client's delinquency profile (docs/domain.md#late-payers) as of the close of a day, "
        "from the ledger as it was that day. With --as-of in the past (e.g. the end of an imported history), "
        "the good-payer standing is left alone, and the nightly run computes at today again."
    )

    def add_arguments(self, parser):
        parser.add_argument("--as-of", dest="as_of", help="The day, YYYY-MM-DD (default: today).")
        parser.add_argument("--json", action="store_true", dest="as_json", help="Print a machine-readable summary.")

    def handle(self, *args, as_of=None, as_json=False, **options):
        today = clock.localdate()
        day = today
        if as_of:
            try:
                day = dt.date.fromisoformat(as_of)
            except ValueError as exc:
                raise CommandError(f"--as-of must be YYYY-MM-DD, not {as_of!r}") from exc
            if day > today:
                raise CommandError(f"--as-of {day} is in the future (today is {today})")
        result = profiles.compute_profiles(today=day, standing=day >= today)
        if as_json:
            self.stdout.write(json.dumps(result, ensure_ascii=False, indent=2))
            return
        self.stdout.write(f"Perfiles de morosidad al {result['today']}: {result['clients']} clientes")
        for code, n in sorted(result["by_profile"].items(), key=lambda item: -item[1]):
            label = Profile(code).label if code in Profile.values else code
            self.stdout.write(f"  {label}: {n}")
        if day < today:
            self.stdout.write(
                "  (Fecha pasada: no cambió la condición de buen pagador; el cálculo nocturno los vuelve a "
                "calcular con la fecha de hoy.)"
            )
