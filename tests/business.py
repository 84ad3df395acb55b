"""The owed business's profile for tests of debtor-facing output (one row, id 1)."""

from __future__ import annotations

import io

from django.core.files.base import ContentFile

from cobranza.models import BusinessProfile

PAY_LINK_TEMPLATE = (
    "https://pagos.example.com/checkout?cliente={cliente}&facturas={facturas}&importe={importe}&moneda={moneda}"
)


def png_logo(width: int = 180, height: int = 48, color: str = "#7a1f5c") -> bytes:
    from PIL import Image, ImageDraw  # Pillow comes with WeasyPrint; only the logo tests need it

    buffer = io.BytesIO()
    image = Image.new("RGB", (width, height), color)
    ImageDraw.Draw(image).text((14, height // 2 - 12), "AURORA", fill="white", font_size=22)
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def business_profile(*, logo: bool = True, **fields) -> BusinessProfile:
    values = {
        "trade_name": "Distribuidora Aurora",
        "legal_name": "Distribuidora Aurora, S.A. de C.V.",
        "tax_id": "DAU010203AB1",
        "brand_color": "#7a1f5c",
        "sender_name": "Cobranza Distribuidora Aurora",
        "sender_email": "cobranza@aurora.example",
        "phone": "+52 55 5000 1234",
        "website": "https://aurora.example",
        "public_base_url": "https://cobranza.aurora.example",
        "bank_name": "BBVA México",
        "bank_account_holder": "Distribuidora Aurora, S.A. de C.V.",
        "clabe": "012180001234567891",
        "payment_link_template": PAY_LINK_TEMPLATE,
        "legal_footer_es": "Distribuidora Aurora, S.A. de C.V. · Av. Reforma 100, Ciudad de México.",
        "legal_footer_en": "Distribuidora Aurora, S.A. de C.V. · 100 Reforma Ave., Mexico City.",
        **fields,
    }
    profile, _created = BusinessProfile.objects.update_or_create(pk=1, defaults=values)
    if logo:
        profile.logo.save("aurora.png", ContentFile(png_logo()), save=True)
    return profile
