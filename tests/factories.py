"""Test data built through the services, so tests exercise the same paths as users.

``make_*`` helpers take only what a test cares about and fill the rest with plausible
values. The named cast (admin, gerente, gestora, gestor) lives in conftest fixtures.
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
from decimal import Decimal

from django.contrib.auth.models import Group, User
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from accounts import services
from accounts.models import Client, Invoice, Segment
from accounts.roles import GROUP_NAMES, Role
from cobranza.business import selectors as business_selectors
from cobranza.business import services as business_services
from cobranza.engine import contact_rules

_seq = itertools.count(1)

PASSWORD = "Cobranza-2026!"


def make_user(username: str, role: str | None, *, first_name: str = "", last_name: str = "") -> User:
    user = User.objects.create_user(
        username=username,
        password=PASSWORD,
        first_name=first_name,
        last_name=last_name,
        email=f"{username}@example.com",
    )
    if role is not None:
        user.groups.add(Group.objects.get(name=GROUP_NAMES[Role(role)]))
    if role == Role.ADMIN:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    return user


def segment(code: str = "regular") -> Segment:
    return Segment.objects.get(code=code)


def make_client(*, by: User, collector: User | None = None, segment_code: str = "regular", **fields) -> Client:
    n = next(_seq)
    fields.setdefault("legal_name", f"Cliente de Prueba {n} S.A. de C.V.")
    fields.setdefault("tax_id", f"TST{n:06d}AB{n % 10}")
    return services.client_create(by=by, segment=segment(segment_code), collector=collector, **fields)


def slot_of(client: Client, day: dt.date) -> dt.datetime:
    """The client's slot on its local ``day`` by its country's rules (docs/domain.md#spread):
    when its automatic messages of that day go out."""
    window = contact_rules.window_of(contact_rules.rules_for(client.country), {})
    return contact_rules.slot_moment(client.pk, day, contact_rules.client_time_zone(client), window)


def make_invoice(
    *,
    by: User,
    client: Client,
    amount: str | Decimal = "1000.00",
    due_in_days: int | None = None,
    due_date: dt.date | None = None,
    issue_date: dt.date | None = None,
    number: str | None = None,
    **fields,
) -> Invoice:
    today = dt.date.today()
    if due_date is None:
        due_date = today + dt.timedelta(days=due_in_days if due_in_days is not None else 30)
    if issue_date is None:
        issue_date = min(due_date, today) - dt.timedelta(days=client.payment_terms_days)
    return services.invoice_create(
        by=by,
        client=client,
        number=number or f"F-{next(_seq):07d}",
        issue_date=issue_date,
        due_date=due_date,
        amount=Decimal(amount),
        **fields,
    )


# The business that is owed, as the autouse fixture in tests/conftest.py sets it up.
BUSINESS = {
    "trade_name": "Ferretería La Esperanza",
    "legal_name": "Ferretería La Esperanza, S.A. de C.V.",
    "sender_name": "Cobranza Ferretería La Esperanza",
    "sender_email": "cobranza@ferreteria-esperanza.example",
    "public_base_url": "https://cobranza.ferreteria-esperanza.example",
    "phone": "+52 55 5555 0100",
}


def png_bytes(size: tuple[int, int] = (120, 40), color: str = "#1F5F8B", fmt: str = "PNG") -> bytes:
    """A small real image (PNG unless ``fmt`` says otherwise), made with Pillow."""
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format=fmt)
    return buffer.getvalue()


def make_business(*, set_up: bool = True, logo: bytes | None = None, **fields):
    """The business's identity through its services (``BUSINESS`` plus ``fields``); set up
    unless ``set_up`` is False."""
    data = {**BUSINESS, **fields}
    upload = SimpleUploadedFile("logo.png", logo) if logo is not None else None
    business_services.business_update(by=None, fields=data, **({"logo": upload} if upload else {}))
    if set_up:
        return business_services.business_setup_complete(by=None, fields=data)
    return business_selectors.current()


def client_page_html(http, client_pk: int, *tabs: str) -> str:
    """The client page as a person reads it after opening ``tabs`` (every section when none
    is named): the summary followed by each section's fragment, as app.js inserts them."""
    from django.urls import reverse

    from accounts.views import SECTIONS

    response = http.get(reverse("client_detail", args=[client_pk]))
    assert response.status_code == 200, response.status_code
    parts = [response.content.decode()]
    for tab in tabs or SECTIONS:
        fragment = http.get(reverse(f"client_section_{tab}", args=[client_pk]))
        assert fragment.status_code == 200, (tab, fragment.status_code)
        parts.append(fragment.content.decode())
    return "\n".join(parts)
