"""Every staff page fits the screen: on a 390-px phone and on a 1280-px desktop, no page
scrolls sideways (wide tables scroll inside their own container instead).

The pages come from the permissions walk's table (``tests/accounts/test_permissions.py``),
which must list every URL of the project: a new page is visited here without anyone
remembering to add it. POST-only routes, the API, the debtor's portal (not a staff page) and
whatever does not answer a whole HTML page (PDFs, CSV, htmx fragments) are left out.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse
from playwright.sync_api import Page

from accounts import clock
from accounts import services as ledger
from cobranza.models import CollectorTask, Notice, NoticeStatus, Policy
from tests.accounts.test_permissions import CASES, project_routes, world  # noqa: F401 (fixture)
from tests.e2e.conftest import ARTIFACTS, login
from tests.factories import PASSWORD, make_client, make_invoice

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}

# Not staff pages: the API and its docs, the debtor's portal, the Django admin (Django's own
# stylesheet), the health probe and the login form (no staff member is logged in there).
NOT_STAFF = ("api:", "selfservice:", "admin:", "healthz", "login")

# Elements sticking out of the viewport, deepest first: what to fix on a failing page.
OFFENDERS_JS = """() => {
  const limit = window.innerWidth;
  const out = [];
  for (const el of document.querySelectorAll('body *')) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.right <= limit + 1) continue;
    let scroller = el.parentElement, clipped = false;
    while (scroller && scroller !== document.body) {
      const o = getComputedStyle(scroller).overflowX;
      if (o === 'auto' || o === 'scroll' || o === 'hidden' || o === 'clip') { clipped = true; break; }
      scroller = scroller.parentElement;
    }
    // An absolutely positioned box escapes a scroller that is not its containing block.
    const position = getComputedStyle(el).position;
    if (clipped && position !== 'absolute' && position !== 'fixed') continue;
    const clips = ['auto', 'scroll', 'hidden', 'clip'].includes(getComputedStyle(el).overflowX);
    if (!clips && [...el.children].some(c => c.getBoundingClientRect().right > limit + 1)) continue;
    const names = typeof el.className === 'string' ? el.className.trim() : '';
    const cls = names ? '.' + names.split(/\\s+/).join('.') : '';
    out.push(`${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}${cls} (right ${Math.round(r.right)})`);
    if (out.length >= 5) break;
  }
  return out;
}"""


def staff_pages(role: str) -> list[str]:
    """Route names of the GET pages ``role`` may open (a 200 in the permissions table)."""
    routes = project_routes()
    return sorted(
        name
        for name, case in CASES.items()
        if name in routes and case.method == "get" and case.expect.get(role) == 200 and not name.startswith(NOT_STAFF)
    )


@pytest.fixture
def portfolio(world, gerente, gestora, gestor):  # noqa: F811 (the imported fixture)
    """The permissions walk's world (an invoice, payment and credit, contacts, a notice, a
    letter, a promise, a plan, a dispute, a task, a hand-off, a late fee, a discount, an alert,
    an import job, a webhook and a failed delivery) plus what makes a page wide in real
    life: long names, e-mails and invoice numbers, and notices of every status."""
    today = clock.localdate()
    now = clock.now()
    wide = make_client(
        by=gerente,
        collector=gestora,
        legal_name="Distribuidora Internacional de Materiales para la Construcción del Noroeste S.A.P.I. de C.V.",
        trade_name="Materiales Construcción Noroeste",
    )
    ledger.contact_create(
        by=gerente,
        client=wide,
        name="Maximiliano Hernández-Villaseñor Echeverría",
        email="maximiliano.hernandez.villasenor.cuentasporpagar@distribuidora-internacional.com.mx",
        phone="+52 81 8123 4567",
        role="billing",
    )
    for days, amount in ((-200, "358949.24"), (-75, "12500.00"), (-20, "9.46"), (15, "45000.00")):
        make_invoice(
            by=gerente,
            client=wide,
            amount=amount,
            due_date=today + dt.timedelta(days=days),
            number=f"FACTURA-NORESTE-2026-{abs(days):04d}-COMPLEMENTO",
        )
    ledger.payment_record(by=gerente, client=wide, amount=Decimal("5000.00"), received_on=today)
    make_client(by=gerente, collector=gestor, legal_name="Abarrotes La Esperanza")
    steps = list(Policy.objects.get(segment__code="regular").steps.order_by("position"))
    for n, status in enumerate(NoticeStatus.values):
        Notice.objects.create(
            client=wide,
            step=steps[n % len(steps)],
            channel=steps[n % len(steps)].channel,
            planned_for=today - dt.timedelta(days=n + 1),
            scheduled_at=now,
            status=status,
            sent_at=now if status == NoticeStatus.SENT else None,
            recipient="maximiliano.hernandez.villasenor.cuentasporpagar@distribuidora-internacional.com.mx",
            reason="Contacto fuera del horario permitido por la regla del país del deudor" if n else "",
        )
    CollectorTask.objects.create(
        client=wide,
        kind="call",
        title="Llamar por FACTURA-NORESTE-2026-0200-COMPLEMENTO y la línea de crédito excedida",
        assigned_to=gestora,
        due_on=today,
    )
    return world


def _url(name: str, objects) -> str:
    kwargs = {}
    for kwarg in project_routes()[name]:
        kwargs[kwarg] = objects[CASES[name].obj].pk
    return reverse(name, kwargs=kwargs)


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
@pytest.mark.parametrize("role,username", [("admin", "admin"), ("owner", "gestora")], ids=["admin", "collector"])
def test_no_staff_page_scrolls_sideways(browser, live_server, portfolio, viewport, role, username):
    context = browser.new_context(locale="es-MX", timezone_id="America/Mexico_City", viewport=viewport)
    context.set_default_timeout(15_000)
    page: Page = context.new_page()
    try:
        login(page, live_server, username, PASSWORD)
        visited, failures = [], []
        for name in staff_pages(role):
            url = f"{live_server.url}{_url(name, portfolio)}"
            # Downloads (PDF, CSV, XLSX) and htmx fragments are not pages.
            head = context.request.get(url)
            if "text/html" not in head.headers.get("content-type", "") or "<html" not in head.text():
                continue
            response = page.goto(url)
            assert response is not None and response.ok, f"{name}: HTTP {response and response.status}"
            page.wait_for_load_state("networkidle")
            visited.append(name)
            scroll_width, inner_width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
            if scroll_width > inner_width:
                shot = ARTIFACTS / f"overflow-{viewport['width']}-{role}-{name.replace(':', '-')}.png"
                ARTIFACTS.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(shot), full_page=True)
                culprits = page.evaluate(OFFENDERS_JS)
                failures.append(f"{name} ({url}): scrollWidth {scroll_width} > {inner_width}; {culprits}")
        # The walk really walked: the main pages of each role are among those visited.
        assert {"home", "client_list", "client_detail", "cobranza:worklist"} <= set(visited)
        if role == "admin":
            assert {"cobranza:approvals", "cobranza:dashboard", "cobranza:webhook_list"} <= set(visited)
        assert not failures, f"{len(failures)} of {len(visited)} pages overflow:\n" + "\n".join(failures)
    finally:
        context.close()
