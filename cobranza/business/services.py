"""Writes of the business's identity: an administrator's settings page, the first-login setup,
``make run``'s default public address and the demo's fictional business.

The checks live here, field by field (``clean``), so the settings form, the setup form and any
other caller refuse the same things with the same messages (docs/domain.md, "Who the debtor
hears from"). Changes are audited by django-auditlog like the other settings (the model is
registered in ``AUDITLOG_INCLUDE_TRACKING_MODELS``)."""

from __future__ import annotations

import hashlib
import io
import re
import string
from collections.abc import Mapping
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.core.validators import EmailValidator, URLValidator
from django.db import transaction
from django.utils.translation import gettext as _
from PIL import Image, UnidentifiedImageError

from accounts import clock, numbers
from accounts.roles import is_admin
from cobranza.business import selectors
from cobranza.models import BusinessProfile, Notice

# Largest logo accepted: it travels in every email's HTML and every PDF.
LOGO_MAX_BYTES = 1024 * 1024
LOGO_MAX_PIXELS = 4000
LOGO_FORMATS = {"PNG": "png", "JPEG": "jpg"}
HEX_COLOR = re.compile(r"^#[0-9A-Fa-f]{6}$")
# The placeholders a payment-link template may use (the payment provider's URL).
PAYMENT_LINK_PLACEHOLDERS = ("cliente", "facturas", "importe", "moneda")

# Every editable field; the first group is what the first-login setup asks for.
ESSENTIAL_FIELDS = ("trade_name", "legal_name", "sender_name", "sender_email", "public_base_url", "phone")
TEXT_FIELDS = (
    *ESSENTIAL_FIELDS,
    "tax_id",
    "brand_color",
    "reply_to",
    "website",
    "signature_es",
    "signature_en",
    "bank_name",
    "bank_account_holder",
    "clabe",
    "iban",
    "bank_account",
    "payment_link_template",
    "legal_footer_es",
    "legal_footer_en",
    "number_format",
)
_KEEP = object()


def ensure_admin(user) -> None:
    if user is not None and not is_admin(user):
        raise PermissionDenied(_("Esta acción requiere el rol de administrador."))


# --- checks, one per kind of field ------------------------------------------------------------


def clabe_check_digit(first17: str) -> int:
    """The CLABE's control digit (Banxico): weights 3, 7, 1 over the first 17 digits, each
    product taken modulo 10; the digit is (10 − sum mod 10) mod 10."""
    total = sum((int(d) * (3, 7, 1)[i % 3]) % 10 for i, d in enumerate(first17))
    return (10 - total % 10) % 10


def clean_clabe(value: str) -> str:
    value = re.sub(r"[\s-]", "", value or "")
    if not value:
        return ""
    if not re.fullmatch(r"\d{18}", value):
        raise ValidationError(_("La CLABE tiene 18 dígitos."))
    if clabe_check_digit(value[:17]) != int(value[17]):
        raise ValidationError(_("La CLABE no es válida: su dígito de control no coincide. Revise que esté completa."))
    return value


def clean_iban(value: str) -> str:
    value = re.sub(r"\s", "", value or "").upper()
    if not value:
        return ""
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}", value):
        raise ValidationError(_("El IBAN empieza por el código del país y dos dígitos (por ejemplo, ES91 2100 …)."))
    digits = "".join(str(int(c, 36)) for c in value[4:] + value[:4])
    if int(digits) % 97 != 1:
        raise ValidationError(_("El IBAN no es válido: sus dígitos de control no coinciden."))
    return value


def clean_brand_color(value: str) -> str:
    value = (value or "").strip()
    if not HEX_COLOR.match(value):
        raise ValidationError(_("Escriba el color como #RRGGBB (por ejemplo, #0D6EFD)."))
    return value.upper()


def clean_url(value: str, *, required: bool = False) -> str:
    value = (value or "").strip()
    if not value:
        if required:
            raise ValidationError(_("Este dato es obligatorio."))
        return ""
    try:
        URLValidator(schemes=["http", "https"])(value)
    except ValidationError as exc:
        raise ValidationError(_("Escriba una dirección completa que empiece por https:// o http://.")) from exc
    return value


def clean_public_base_url(value: str) -> str:
    value = clean_url(value, required=True)
    if "?" in value or "#" in value:
        raise ValidationError(_("Solo la dirección del sitio, sin «?» ni «#»."))
    return value.rstrip("/")


def clean_email(value: str, *, required: bool = False) -> str:
    value = (value or "").strip()
    if not value:
        if required:
            raise ValidationError(_("Este dato es obligatorio."))
        return ""
    try:
        EmailValidator()(value)
    except ValidationError as exc:
        raise ValidationError(_("Escriba una dirección de correo válida (nombre@dominio).")) from exc
    return value


def clean_number_format(value: str) -> str:
    value = (value or "").strip()
    if value and value not in numbers.RULES:
        raise ValidationError(_("Elija uno de los formatos de la lista."))
    return value


def clean_payment_link_template(value: str) -> str:
    value = (value or "").strip()
    if not value:
        return ""
    names = set()
    try:
        for _literal, name, _spec, _conversion in string.Formatter().parse(value):
            if name is not None:
                names.add(name)
    except ValueError as exc:
        raise ValidationError(
            _("Llaves sin cerrar: escriba los datos como {cliente}, {facturas}, {importe} o {moneda}.")
        ) from exc
    unknown = sorted(names - set(PAYMENT_LINK_PLACEHOLDERS))
    if unknown:
        raise ValidationError(
            _("Datos desconocidos: %(names)s. Se pueden usar %(allowed)s.")
            % {
                "names": ", ".join(f"{{{n}}}" for n in unknown),
                "allowed": ", ".join(f"{{{n}}}" for n in PAYMENT_LINK_PLACEHOLDERS),
            }
        )
    sample = value.format(cliente="1042", facturas="F-1,F-2", importe="1234.50", moneda="MXN")
    clean_url(sample)
    return value


def clean_logo(file) -> tuple[bytes, str]:
    """The logo's bytes and extension, read by Pillow: a real PNG or JPEG (whatever the file
    is called), at most LOGO_MAX_BYTES and LOGO_MAX_PIXELS a side."""
    size = getattr(file, "size", None)
    if size is not None and size > LOGO_MAX_BYTES:
        raise ValidationError(_("El logotipo pesa demasiado: como máximo %(kb)s KB.") % {"kb": LOGO_MAX_BYTES // 1024})
    data = file.read(LOGO_MAX_BYTES + 1)
    if len(data) > LOGO_MAX_BYTES:
        raise ValidationError(_("El logotipo pesa demasiado: como máximo %(kb)s KB.") % {"kb": LOGO_MAX_BYTES // 1024})
    try:
        with Image.open(io.BytesIO(data)) as image:
            fmt = image.format
            width, height = image.size
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ValidationError(_("El archivo no es una imagen PNG o JPEG válida.")) from exc
    if fmt not in LOGO_FORMATS:
        raise ValidationError(_("El logotipo debe ser una imagen PNG o JPEG."))
    if width > LOGO_MAX_PIXELS or height > LOGO_MAX_PIXELS:
        raise ValidationError(
            _("El logotipo es demasiado grande: como máximo %(px)s píxeles por lado.") % {"px": LOGO_MAX_PIXELS}
        )
    return data, LOGO_FORMATS[fmt]


_REQUIRED_TEXT = {"trade_name", "legal_name", "sender_name", "phone"}


def clean(data: Mapping[str, Any]) -> dict[str, Any]:
    """Check and normalise the fields present in ``data``; ``ValidationError`` keyed by field."""
    checks = {
        "brand_color": clean_brand_color,
        "sender_email": lambda v: clean_email(v, required=True),
        "reply_to": clean_email,
        "website": clean_url,
        "public_base_url": clean_public_base_url,
        "clabe": clean_clabe,
        "iban": clean_iban,
        "payment_link_template": clean_payment_link_template,
        "number_format": clean_number_format,
    }
    cleaned: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for name, value in data.items():
        if name not in TEXT_FIELDS:
            continue
        value = value if value is not None else ""
        try:
            if name in checks:
                cleaned[name] = checks[name](value)
            else:
                value = str(value).strip()
                if name in _REQUIRED_TEXT and not value:
                    raise ValidationError(_("Este dato es obligatorio."))
                max_length = BusinessProfile._meta.get_field(name).max_length
                if max_length and len(value) > max_length:
                    raise ValidationError(_("Como máximo %(n)s caracteres.") % {"n": max_length})
                cleaned[name] = value
        except ValidationError as exc:
            errors[name] = exc.messages
    if errors:
        raise ValidationError(errors)
    return cleaned


# --- writes ------------------------------------------------------------------------------------


def _locked() -> BusinessProfile:
    profile, _created = BusinessProfile.objects.select_for_update().get_or_create(pk=1)
    return profile


def _store_logo(profile: BusinessProfile, logo) -> None:
    if logo is _KEEP:
        return
    if not logo:  # cleared
        profile.logo = ""
        return
    data, extension = logo if isinstance(logo, tuple) else clean_logo(logo)
    digest = hashlib.sha256(data).hexdigest()[:12]
    profile.logo.save(f"logo-{digest}.{extension}", ContentFile(data), save=False)


def business_update(*, by: AbstractBaseUser | None, fields: Mapping[str, Any], logo: Any = _KEEP) -> BusinessProfile:
    """Change the business's identity (the settings page). ``logo``: an uploaded file (checked
    with Pillow), ``None``/``False`` to remove it, or left out to keep it."""
    ensure_admin(by)
    cleaned = clean(fields)
    logo = _KEEP if logo is _KEEP else (clean_logo(logo) if logo else None)
    with transaction.atomic():
        profile = _locked()
        for name, value in cleaned.items():
            setattr(profile, name, value)
        _store_logo(profile, logo)
        profile.save()
    return profile


def business_setup_complete(*, by: AbstractBaseUser | None, fields: Mapping[str, Any]) -> BusinessProfile:
    """The first-login setup: the essentials, then the business counts as set up and debtor
    messages may go out under its name."""
    ensure_admin(by)
    missing = {name: [_("Este dato es obligatorio.")] for name in ESSENTIAL_FIELDS if not fields.get(name)}
    try:
        cleaned = clean({name: fields.get(name, "") for name in ESSENTIAL_FIELDS})
    except ValidationError as exc:
        missing.update(exc.message_dict)
        raise ValidationError(missing) from exc
    if missing:
        raise ValidationError(missing)
    with transaction.atomic():
        profile = _locked()
        for name, value in cleaned.items():
            setattr(profile, name, value)
        if profile.setup_completed_at is None:
            profile.setup_completed_at = clock.now()
        profile.save()
        release_held_notices()
    return profile


def release_held_notices() -> int:
    """The messages dispatch held while the business was not set up go out at the next
    dispatch run instead of waiting out their hold."""
    return Notice.objects.filter(
        status=Notice.Status.PLANNED, reason__in=selectors.not_set_up_reasons(), scheduled_at__gt=clock.now()
    ).update(scheduled_at=clock.now())


def public_address_default(*, url: str) -> bool:
    """``make run``: its own address becomes the public address when none is set (reminders
    then carry working portal links on a developer's machine). True when it was set."""
    url = clean_public_base_url(url)
    with transaction.atomic():
        profile = _locked()
        if profile.public_base_url:
            return False
        profile.public_base_url = url
        profile.save(update_fields=["public_base_url", "updated_at"])
    return True


def business_demo(*, logo: bytes, public_base_url: str = "") -> BusinessProfile:
    """The demo's fictional business (seed_demo), set up; a public address already chosen
    (``make run``'s) is kept, and a business an administrator already set up is left alone."""
    fields = {
        "trade_name": "Aceros y Herrajes del Bajío",
        "legal_name": "Aceros y Herrajes del Bajío, S.A. de C.V.",
        "tax_id": "AHB150312KT4",
        "brand_color": "#1F5F8B",
        "sender_name": "Cobranza · Aceros y Herrajes del Bajío",
        "sender_email": "cobranza@acerosdelbajio.example",
        "reply_to": "creditoycobranza@acerosdelbajio.example",
        "phone": "+52 477 555 0142",
        "website": "https://acerosdelbajio.example",
        "signature_es": (
            "Departamento de Crédito y Cobranza\nAceros y Herrajes del Bajío\n"
            "Blvd. Adolfo López Mateos 2150, León, Gto.\nTel. +52 477 555 0142"
        ),
        "signature_en": (
            "Credit and Collections Department\nAceros y Herrajes del Bajío\n"
            "Blvd. Adolfo López Mateos 2150, León, Gto., Mexico\nPhone +52 477 555 0142"
        ),
        "bank_name": "Banco Ficticio del Centro",
        "bank_account_holder": "Aceros y Herrajes del Bajío, S.A. de C.V.",
        "clabe": "012180001234567899",
        "iban": "",
        "bank_account": "0123456789",
        "payment_link_template": "",
        "legal_footer_es": (
            "Aceros y Herrajes del Bajío, S.A. de C.V. · RFC AHB150312KT4 · Sus datos se tratan conforme a "
            "nuestro aviso de privacidad (acerosdelbajio.example/privacidad)."
        ),
        "legal_footer_en": (
            "Aceros y Herrajes del Bajío, S.A. de C.V. · Tax ID AHB150312KT4 · Your data is processed according "
            "to our privacy notice (acerosdelbajio.example/privacidad)."
        ),
        "public_base_url": public_base_url or "http://127.0.0.1:8000",
    }
    cleaned = clean(fields)
    with transaction.atomic():
        profile = _locked()
        if profile.setup_completed_at is not None:
            return profile
        if profile.public_base_url:
            cleaned.pop("public_base_url")
        for name, value in cleaned.items():
            setattr(profile, name, value)
        _store_logo(profile, clean_logo(io.BytesIO(logo)))
        profile.setup_completed_at = profile.setup_completed_at or clock.now()
        profile.save()
        release_held_notices()
    return profile
