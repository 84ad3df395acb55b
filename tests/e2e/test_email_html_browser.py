"""The HTML email in a real browser (Debian's Chromium through Playwright): a real reminder's
HTML at desktop (1280 px) and phone (390 px) width, with no horizontal scrolling, screenshots
kept in tests/artifacts/email/; and the template editor's live preview showing that HTML in its
sandboxed frame under the page's Content-Security-Policy (styles and logo load)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from django.urls import reverse
from playwright.sync_api import Page, expect

from accounts import services as ledger
from cobranza.engine import html_email, messaging
from cobranza.engine.planner import plan
from cobranza.models import ClientDunning, MessageTemplate, Notice, Policy, PolicyStep
from tests.business import business_profile
from tests.e2e.conftest import login
from tests.factories import PASSWORD, make_client, make_invoice

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "email"
DUE = dt.date(2026, 3, 2)
WIDTHS = {"desktop": 1280, "phone": 390}


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    # The business (name, public address) is tests.business.business_profile's.


def _shoot(page: Page, name: str) -> None:
    """A full-page screenshot, reduced to 64 colours: small enough to keep in the repository."""
    from PIL import Image  # Pillow comes with WeasyPrint; only the screenshots need it

    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    Image.open(path).convert("RGB").quantize(colors=64).save(path, optimize=True)


def _reminder_html(client) -> str:
    """The HTML of the client's reminder (the default courteous template), as sent — with the
    logo as a data: URI, since a page has no MIME message to resolve cid: against."""
    plan(today=DUE + dt.timedelta(days=3))
    notice = Notice.objects.select_related("client__collector", "step__template").get(client=client)
    notice.contact = client.contacts.get()
    items = list(notice.items.select_related("invoice").order_by("invoice__due_date"))
    context = messaging.notice_context(notice, items=items, today=DUE + dt.timedelta(days=5))
    rendered = messaging.render(template=notice.step.template, language=client.language, context=context)
    return html_email.build(rendered=rendered, context=context, embed="data").html


def _debtor(gerente, gestora, *, name, language, currency):
    template = MessageTemplate.objects.filter(channel="email").order_by("id").first()
    policy = Policy.objects.create(name=f"Correo {language}")
    PolicyStep.objects.create(
        policy=policy, position=1, name="Aviso", offset_days=3, channel="email", template=template
    )
    client = make_client(by=gerente, collector=gestora, legal_name=name, language=language, currency=currency)
    ledger.contact_create(by=gerente, client=client, name="Rosa María Pagos Villaseñor", email="rosa@x.example")
    invoices = (("FAC-2026-000871", "12500.00"), ("FAC-2026-000912", "8320.50"), ("FAC-2026-000955", "99.99"))
    for number, amount in invoices:
        make_invoice(by=gerente, client=client, number=number, amount=amount, due_date=DUE, currency=currency)
    ClientDunning.objects.create(client=client, policy=policy)
    return client


def _no_horizontal_overflow(page: Page) -> None:
    sizes = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert sizes[0] <= sizes[1], f"horizontal overflow: {sizes}"


@pytest.mark.parametrize(("language", "currency"), [("es", "MXN"), ("en", "EUR")])
def test_the_reminder_html_fits_desktop_and_phone_widths(browser, gerente, gestora, media, language, currency):
    business_profile(iban="ES9121000418450200051332" if currency == "EUR" else "")
    name = "Comercializadora y Distribuidora del Bajío Oriente"
    client = _debtor(gerente, gestora, name=name, language=language, currency=currency)
    html = _reminder_html(client)
    SHOTS.mkdir(parents=True, exist_ok=True)
    for label, width in WIDTHS.items():
        context = browser.new_context(viewport={"width": width, "height": 900}, locale=f"{language}-MX")
        try:
            page = context.new_page()
            page.set_content(html, wait_until="load")
            expect(page.locator("tr[data-invoice]")).to_have_count(3)
            pay = page.locator("a[data-role=pay]")
            expect(pay).to_be_visible()
            assert pay.get_attribute("href").startswith("https://pagos.example.com/checkout?")
            assert page.locator("img.logo").evaluate("img => img.naturalWidth") == 180
            portal = page.locator("a[data-role=portal]")
            assert portal.get_attribute("href").startswith("https://cobranza.aurora.example/portal/")
            assert "Morosos" not in page.content()
            _no_horizontal_overflow(page)
            box = pay.bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= width
            if language == "es" or label == "phone":
                _shoot(page, f"reminder-{language}-{label}")
        finally:
            context.close()


def test_the_template_editor_shows_the_html_in_a_sandboxed_frame(page, live_server, gerente, media):
    business_profile()
    template = MessageTemplate.objects.filter(channel="email").order_by("id").first()
    login(page, live_server, "gerente", PASSWORD)
    page.set_viewport_size({"width": 1280, "height": 1000})
    page.goto(live_server.url + reverse("cobranza:template_edit", args=[template.pk]))
    frame = page.frame_locator("[data-testid=preview-html]")
    expect(frame.locator("tr[data-invoice]")).to_have_count(3)
    expect(frame.locator("a[data-role=pay]").first).to_have_text("Pagar $16,820.50")
    # The page's Content-Security-Policy lets the frame's inline styles and data: logo through.
    assert frame.locator("img.logo").evaluate("img => img.naturalWidth") == 180
    assert "rgb(122, 31, 92)" in frame.locator("a[data-role=pay]").first.evaluate(
        "a => getComputedStyle(a).backgroundColor"
    )
    page.locator("[data-testid=preview-html]").scroll_into_view_if_needed()
    _shoot(page, "template-editor")
