"""Letters: a notice on the letter channel is rendered to a PDF and listed for printing."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import translation

from accounts import clock
from cobranza.business import selectors as business
from cobranza.engine.channels import PermanentSendError, SendResult


def letters_dir() -> Path:
    return Path(settings.MEDIA_ROOT) / "cartas"


def letter_path(notice) -> Path:
    return letters_dir() / f"aviso-{notice.pk}-{notice.planned_for:%Y%m%d}.pdf"


def store_letter(notice, rendered) -> SendResult:
    """Write the letter PDF (idempotent: the same notice always writes the same file)."""
    from weasyprint import HTML  # imported here: loading pango costs ~0.3 s at start-up

    profile = business.current()
    with translation.override(notice.language):
        html = render_to_string(
            "cobranza/letter.html",
            {
                "notice": notice,
                "client": notice.client,
                "contact": notice.contact,
                "subject": rendered.subject,
                "body": rendered.body,
                # The business that is owed, with its logo embedded from the file itself.
                "business": profile,
                "company": profile.trade_name,
                "logo_file": business.logo_file_uri(profile),
                "contact_email": business.contact_email(profile),
                "legal_footer": business.by_language(profile, "legal_footer", notice.language),
                "today": clock.localdate(),
            },
        )
    path = letter_path(notice)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".pdf.part")
    try:
        HTML(string=html).write_pdf(tmp)
    except Exception as exc:  # a PDF that cannot be made will not be made by retrying
        raise PermanentSendError(f"PDF: {exc}") from exc
    tmp.replace(path)
    return SendResult(provider_ref=str(path.relative_to(settings.MEDIA_ROOT)))
