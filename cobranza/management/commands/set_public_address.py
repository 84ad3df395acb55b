"""``python manage.py set_public_address URL [--if-empty]``: the address debtors reach this
application at (the base of the portal links in reminders). ``make run`` calls it with its
own address and ``--if-empty``, so a developer's reminders carry working links; in production
an administrator sets it on the business settings page."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from cobranza.business import selectors, services


class Command(BaseCommand):
    help = "Set the business's public address (the base of portal links), e.g. http://127.0.0.1:8000."

    def add_arguments(self, parser):
        parser.add_argument("url")
        parser.add_argument("--if-empty", action="store_true", help="only when no public address is set yet")

    def handle(self, *args, url, if_empty, **options):
        try:
            if if_empty:
                changed = services.public_address_default(url=url)
            else:
                services.business_update(by=None, fields={"public_base_url": url})
                changed = True
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        current = selectors.current().public_base_url
        self.stdout.write(f"public address: {current}" + ("" if changed else " (kept)"))
