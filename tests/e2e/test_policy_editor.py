"""A manager edits a message template with its live preview against a real client, then
adds a step to a ladder and puts it in its place, in a real browser (Debian's Chromium
through Playwright) against the live server."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import Page, expect

from cobranza.models import MessageTemplateText, PolicyStep
from tests.e2e.conftest import ARTIFACTS, login
from tests.factories import PASSWORD, make_client, make_invoice

# Transactional: the live server thread must see the data the test writes.
pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

TODAY = timezone.localdate()


def _screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_manager_edits_a_template_with_a_live_preview_and_adds_a_step(page, live_server, gerente, gestora):
    martillo = make_client(
        by=gerente, collector=gestora, legal_name="Ferretería El Martillo S.A. de C.V.", trade_name="El Martillo"
    )
    make_invoice(
        by=gerente, client=martillo, amount="1000.00", due_date=TODAY - dt.timedelta(days=12), number="FM-0101"
    )
    make_invoice(by=gerente, client=martillo, amount="250.50", due_date=TODAY + dt.timedelta(days=3), number="FM-0102")
    make_client(by=gerente, legal_name="Abarrotes Doña Lupe")

    login(page, live_server, "gerente", PASSWORD)
    page.goto(live_server.url + reverse("cobranza:template_list"))
    expect(page.get_by_role("heading", level=1, name="Plantillas de mensaje")).to_be_visible()
    _screenshot(page, "template_list")
    page.get_by_role("link", name="Aviso de vencimiento", exact=True).click()
    expect(page.get_by_role("heading", level=1, name="Aviso de vencimiento")).to_be_visible()

    # The preview starts with the sample data, then follows the client the manager picks.
    preview = page.locator("#preview-output")
    expect(preview).to_contain_text("Comercializadora del Bajío")
    page.get_by_placeholder("Buscar cliente por nombre o RFC/NIF").press_sequentially("martillo")
    picker = page.get_by_label("Cliente de la vista previa")
    expect(picker.locator("option")).to_have_count(2)  # the sample data, and El Martillo
    picker.select_option(str(martillo.pk))
    expect(preview).to_contain_text("Para El Martillo")
    expect(preview.get_by_test_id("preview-body")).to_contain_text("FM-0101")

    # Typing in the body updates the preview with the client's name and invoices.
    body = page.locator("#id_body_es")
    body.fill("")
    body.press_sequentially("Estimado {{ cliente }}: {% for f in facturas %}{{ f.numero }} {% endfor %}")
    expect(preview.get_by_test_id("preview-body")).to_have_text("Estimado El Martillo: FM-0101 FM-0102")

    # A placeholder that does not exist is explained under the field, as it is typed.
    broken = " {{ cliente.nada }}"
    body.press_sequentially(broken)
    expect(page.locator("#live-error-body_es")).to_contain_text("no tiene el dato «nada»")
    expect(preview.get_by_test_id("preview-errors")).to_be_visible()
    _screenshot(page, "template_editor_inline_error")
    for _ in broken:
        body.press("Backspace")
    expect(page.locator("#live-error-body_es")).to_be_empty()
    expect(preview.get_by_test_id("preview-body")).to_have_text("Estimado El Martillo: FM-0101 FM-0102")

    # Clicking a placeholder in the help panel inserts it at the cursor.
    body.press("End")
    page.get_by_role("button", name="{{ total_texto }}", exact=True).click()
    expect(preview.get_by_test_id("preview-body")).to_have_text("Estimado El Martillo: FM-0101 FM-0102 $1,250.50")
    _screenshot(page, "template_editor_live_preview")

    page.get_by_role("button", name="Guardar plantilla").click()
    expect(page.get_by_role("alert").filter(has_text="Plantilla «Aviso de vencimiento» guardada.")).to_be_visible()
    expect(page.get_by_label("Cliente de la vista previa")).to_have_value(str(martillo.pk))
    saved = MessageTemplateText.objects.get(template__code="aviso-vencimiento", language="es")
    assert saved.body == "Estimado {{ cliente }}: {% for f in facturas %}{{ f.numero }} {% endfor %}{{ total_texto }}"

    # Then a new step on the regular ladder.
    page.get_by_role("link", name="Políticas de cobranza").first.click()
    expect(page.get_by_role("heading", level=1, name="Políticas de cobranza")).to_be_visible()
    _screenshot(page, "policy_list")
    page.get_by_role("link", name="Escalera regular").click()
    page.get_by_role("link", name="Agregar paso").click()
    expect(page.get_by_role("heading", level=1, name="Nuevo paso")).to_be_visible()
    page.get_by_label("Nombre").fill("WhatsApp antes de la llamada")
    page.get_by_label("Días", exact=False).first.fill("10")
    page.get_by_label("Cuándo").select_option("after")
    page.get_by_label("Canal").select_option(label="WhatsApp")
    page.get_by_label("Plantilla").select_option(label="WhatsApp de seguimiento (plantilla aprobada)")
    page.get_by_label("Tono").select_option(label="Firme")
    _screenshot(page, "step_form")
    page.get_by_role("button", name="Agregar paso").click()

    expect(
        page.get_by_role("alert").filter(has_text="Paso «WhatsApp antes de la llamada» agregado a la escalera.")
    ).to_be_visible()
    row = page.get_by_role("row").filter(has_text="WhatsApp antes de la llamada")
    expect(row).to_contain_text("10 días después del vencimiento")
    expect(row).to_contain_text("WhatsApp de seguimiento (plantilla aprobada)")
    # Added last, after the +60 review: the page warns the ladder is out of order ...
    warning = page.get_by_text("Hay pasos activos con menos días que un paso anterior")
    expect(warning).to_be_visible()
    # ... and four moves up put it between the +7 SMS and the +15 call.
    expect(row.locator("td").first).to_have_text("8")
    for position in (7, 6, 5, 4):
        page.get_by_role("button", name="Subir «WhatsApp antes de la llamada»").click()
        expect(row.locator("td").first).to_have_text(str(position))
    expect(warning).to_have_count(0)
    _screenshot(page, "policy_ladder_after_adding_a_step")
    ladder = list(
        PolicyStep.objects.filter(policy__segment__code="regular")
        .order_by("position")
        .values_list("offset_days", flat=True)
    )
    assert ladder == [-3, 1, 7, 10, 15, 30, 45, 60]
