"""The business's identity: the administrators' settings page, its checks field by field, the
public logo, the first-login setup, and debtor messages held until the business is set up
(docs/domain.md, "Who the debtor hears from")."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import time_machine
from auditlog.models import LogEntry
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse

from accounts import services as ledger
from cobranza.business import middleware, selectors, services
from cobranza.demo import demo_logo
from cobranza.engine import dispatch
from cobranza.engine.planner import plan
from cobranza.models import BusinessProfile, MessageTemplate, MessageTemplateText, Notice, Policy, PolicyStep
from tests.factories import BUSINESS, make_business, make_client, make_invoice, png_bytes, segment

pytestmark = pytest.mark.django_db
URL = reverse("cobranza:business_settings")
SETUP = reverse("cobranza:business_setup")
MX = ZoneInfo("America/Mexico_City")
DUE = dt.date(2026, 3, 2)
# Inside the window and after every client's slot (docs/domain.md#spread): messages are due.
AT_21 = dt.datetime.combine(DUE + dt.timedelta(days=1), dt.time(21, 0), tzinfo=MX)


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def _form(**overrides) -> dict:
    data = {
        **BUSINESS,
        "tax_id": "FES150312AB1",
        "brand_color": "#1F5F8B",
        "reply_to": "pagos@ferreteria-esperanza.example",
        "website": "https://ferreteria-esperanza.example",
        "signature_es": "Departamento de Cobranza\nFerretería La Esperanza",
        "signature_en": "Collections Department\nFerretería La Esperanza",
        "bank_name": "Banco del Centro",
        "bank_account_holder": "Ferretería La Esperanza, S.A. de C.V.",
        "clabe": "002010077777777771",
        "iban": "ES91 2100 0418 4502 0005 1332",
        "bank_account": "0123456789",
        "payment_link_template": "https://pagos.example.mx/pagar?ref={cliente}&monto={importe}&moneda={moneda}",
        "legal_footer_es": "Ferretería La Esperanza, S.A. de C.V. · RFC FES150312AB1",
        "legal_footer_en": "Ferretería La Esperanza, S.A. de C.V. · Tax ID FES150312AB1",
    }
    data.update(overrides)
    return data


# --- who may see the page ----------------------------------------------------------------------


def test_only_administrators_reach_the_settings_page(client, admin_user, gerente, gestora, nobody):
    assert client.get(URL).status_code == 302  # login first
    for user in (gerente, gestora, nobody):
        client.force_login(user)
        assert client.get(URL).status_code == 403, user
        assert client.post(URL, _form()).status_code == 403, user
    assert BusinessProfile.objects.get().tax_id == ""  # nothing changed
    client.force_login(admin_user)
    page = client.get(URL)
    assert page.status_code == 200
    assert BUSINESS["trade_name"] in page.content.decode()


def test_the_administrators_menu_links_to_the_page(client, admin_user, gerente):
    client.force_login(admin_user)
    assert b'data-testid="nav-business"' in client.get(reverse("home")).content
    client.force_login(gerente)
    assert b'data-testid="nav-business"' not in client.get(reverse("home")).content


# --- the checks, field by field ------------------------------------------------------------------


def test_a_complete_form_is_saved_and_audited(client, admin_user, media):
    client.force_login(admin_user)
    response = client.post(URL, {**_form(), "logo": SimpleUploadedFile("marca.png", png_bytes())})
    assert response.status_code == 302, response.content.decode()[:2000]
    profile = BusinessProfile.objects.get()
    assert profile.clabe == "002010077777777771"
    assert profile.iban == "ES9121000418450200051332"  # spaces removed
    assert profile.logo.name.startswith("marca/logo-") and profile.logo.name.endswith(".png")
    entry = LogEntry.objects.get_for_object(profile).filter(actor=admin_user).latest("timestamp")
    assert "clabe" in entry.changes_dict and "tax_id" in entry.changes_dict


def test_the_logo_is_kept_replaced_or_removed(client, admin_user, media):
    client.force_login(admin_user)
    client.post(URL, {**_form(), "logo": SimpleUploadedFile("a.jpg", png_bytes(fmt="JPEG"))})
    first = BusinessProfile.objects.get().logo.name
    assert first.endswith(".jpg")  # named by what Pillow read, not by the upload
    assert client.post(URL, _form()).status_code == 302
    assert BusinessProfile.objects.get().logo.name == first  # no upload: kept
    assert client.post(URL, {**_form(), "remove_logo": "on"}).status_code == 302
    assert not BusinessProfile.objects.get().logo
    assert client.get(reverse("business_logo")).status_code == 404


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("brand_color", "azul", "#RRGGBB"),
        ("brand_color", "#12345", "#RRGGBB"),
        ("clabe", "00201007777777777", "18 dígitos"),
        ("clabe", "002010077777777772", "dígito de control"),
        ("iban", "ES91 2100 0418 4502 0005 1333", "dígitos de control"),
        ("iban", "1234", "código del país"),
        ("website", "ferreteria.example", "https://"),
        ("public_base_url", "https://cobranza.example/?a=1", "«?»"),
        ("public_base_url", "", "obligatorio"),
        ("sender_email", "cobranza-at-ferreteria", "correo válida"),
        ("reply_to", "pagos@", "correo válida"),
        ("trade_name", "   ", "obligatorio"),
        ("payment_link_template", "https://pagos.example.mx/{cliente}/{saldo}", "{saldo}"),
        ("payment_link_template", "https://pagos.example.mx/{cliente", "Llaves"),
    ],
)
def test_each_wrong_field_gets_its_own_error(client, admin_user, field, value, message):
    client.force_login(admin_user)
    response = client.post(URL, _form(**{field: value}))
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert list(errors) == [field], errors
    assert message in " ".join(errors[field])
    assert BusinessProfile.objects.get().tax_id == ""  # nothing saved


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("logo.png", b"not an image at all", "PNG o JPEG válida"),
        ("logo.gif", png_bytes(fmt="GIF"), "PNG o JPEG"),
        ("logo.png", png_bytes(size=(4100, 10)), "píxeles"),
        ("logo.png", b"\x89PNG" + b"0" * (services.LOGO_MAX_BYTES + 10), "1024 KB"),
    ],
)
def test_a_logo_that_is_not_a_small_png_or_jpeg_is_refused(client, admin_user, media, name, content, message):
    client.force_login(admin_user)
    response = client.post(URL, {**_form(), "logo": SimpleUploadedFile(name, content)})
    assert response.status_code == 200
    assert message in " ".join(response.context["form"].errors["logo"])
    assert not BusinessProfile.objects.get().logo


def test_the_clabe_and_iban_checks_follow_their_standards():
    assert services.clabe_check_digit("00201007777777777") == 1  # Banxico's published example
    assert services.clean_clabe("002 010 07777777777 1") == "002010077777777771"
    for iban in ("DE89370400440532013000", "GB82 WEST 1234 5698 7654 32", "es91 2100 0418 4502 0005 1332"):
        assert services.clean_iban(iban) == iban.replace(" ", "").upper()


# --- the public logo -------------------------------------------------------------------------------


def test_the_logo_is_public_cached_and_carries_no_client_data(client, media):
    assert client.get(reverse("business_logo")).status_code == 404  # no logo yet
    profile = make_business(logo=png_bytes())
    response = client.get(reverse("business_logo"))  # anonymous
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert "public" in response["Cache-Control"] and "max-age=86400" in response["Cache-Control"]
    assert b"".join(response.streaming_content) == png_bytes()
    assert selectors.logo_url(profile).startswith(BUSINESS["public_base_url"] + "/marca/logo?v=")


# --- first login ------------------------------------------------------------------------------------


@pytest.mark.without_business
def test_the_first_administrator_is_taken_to_the_setup_before_anything_else(client, admin_user):
    client.force_login(admin_user)
    response = client.get(reverse("client_list"))
    assert response.status_code == 302
    assert response["Location"] == f"{SETUP}?next=%2Fclientes%2F"
    assert client.get(SETUP).status_code == 200
    incomplete = client.post(SETUP, {**BUSINESS, "sender_email": "", "next": "/clientes/"})
    assert incomplete.status_code == 200 and list(incomplete.context["form"].errors) == ["sender_email"]
    done = client.post(SETUP, {**BUSINESS, "next": "/clientes/"})
    assert done.status_code == 302 and done["Location"] == "/clientes/"
    assert selectors.is_set_up()
    assert client.get(reverse("client_list")).status_code == 200


@pytest.mark.without_business
def test_collectors_and_managers_are_not_blocked_but_told(client, gerente, gestora):
    for user in (gerente, gestora):
        client.force_login(user)
        page = client.get(reverse("home"))
        assert page.status_code == 200
        assert b'data-testid="business-setup-pending"' in page.content
        assert "Pida a un administrador" in page.content.decode()
        assert client.get(SETUP).status_code == 403


def test_a_set_up_business_costs_no_query_per_request(client, admin_user, django_assert_num_queries):
    client.force_login(admin_user)
    client.get(reverse("home"))
    session = client.session
    assert session[middleware.SETUP_SESSION_KEY] == middleware.DONE  # read at login
    request = type("R", (), {})()
    request.user, request.session = admin_user, session
    request.path, request.method, request.resolver_match = "/", "GET", None
    with django_assert_num_queries(0):
        assert middleware.BusinessSetupMiddleware(lambda r: None).process_view(request, lambda r: None, (), {}) is None


# --- debtor messages wait for the business -------------------------------------------------------------


def _email_ladder():
    Policy.objects.filter(segment=segment("regular")).delete()
    policy = Policy.objects.create(name="Identidad", segment=segment("regular"))
    template = MessageTemplate.objects.create(code="t-id", name="t-id", channel="email")
    MessageTemplateText.objects.create(
        template=template, language="es", subject="Saldo de {{ cliente }} · {{ empresa }}", body="{{ empresa.firma }}"
    )
    PolicyStep.objects.create(
        policy=policy, position=1, name="Correo", offset_days=1, channel="email", template=template
    )


@pytest.mark.without_business
def test_dispatch_holds_debtor_messages_until_the_business_is_set_up(gerente, gestora, admin_user, smtp, outbox):
    _email_ladder()
    debtor = make_client(by=gerente, collector=gestora, legal_name="Tlapalería Sin Nombre")
    ledger.contact_create(by=gerente, client=debtor, name="Rosa", email="rosa@tlapaleria.example")
    make_invoice(by=gerente, client=debtor, number="T-1", due_date=DUE)
    with time_machine.travel(AT_21, tick=False):
        plan(today=DUE + dt.timedelta(days=1), now=AT_21)
        [notice_id] = dispatch.due_notice_ids(now=AT_21)
        result = dispatch.dispatch(notice_id, now=AT_21)
        assert result.outcome == "deferred"
        notice = Notice.objects.get(pk=notice_id)
        assert notice.status == "planned" and notice.reason == selectors.not_set_up_reason()
        assert notice.scheduled_at == AT_21 + dispatch.BUSINESS_SETUP_RETRY
        assert smtp.messages == []

    later = AT_21 + dt.timedelta(minutes=20)
    with time_machine.travel(later, tick=False):
        make_business(signature_es="Cobranza\nFerretería La Esperanza")  # finishing the setup releases it
        assert Notice.objects.get(pk=notice_id).scheduled_at == later
        assert dispatch.due_notice_ids(now=later) == [notice_id]
        assert dispatch.dispatch(notice_id, now=later).outcome == "sent"
    [message] = smtp.messages
    assert message["From"] == f"{BUSINESS['sender_name']} <{BUSINESS['sender_email']}>"
    assert message["Subject"].strip() == f"Saldo de Tlapalería Sin Nombre · {BUSINESS['trade_name']}"
    assert message["Message-ID"].endswith("@ferreteria-esperanza.example>")


# --- the demo and make run ---------------------------------------------------------------------------


@pytest.mark.without_business
def test_make_runs_address_then_the_demo_business(media):
    call_command("set_public_address", "http://127.0.0.1:8123", "--if-empty")
    call_command("set_public_address", "http://127.0.0.1:9999", "--if-empty")  # kept
    assert BusinessProfile.objects.get().public_base_url == "http://127.0.0.1:8123"
    profile = services.business_demo(logo=demo_logo())
    assert profile.setup_completed_at is not None
    assert profile.public_base_url == "http://127.0.0.1:8123"
    assert services.clean_clabe(profile.clabe) == profile.clabe
    assert profile.logo and profile.signature_es and profile.signature_en and profile.legal_footer_es
    assert "morosos" not in str(vars(profile)).lower()
