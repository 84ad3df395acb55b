"""Reads of the business's identity (``cobranza.models.BusinessProfile``): who the debtor hears
from (docs/domain.md, "Who the debtor hears from")."""

from __future__ import annotations

import contextlib
import contextvars
from email.utils import formataddr, parseaddr
from pathlib import Path

from django.conf import settings
from django.urls import reverse
from django.utils import translation

from accounts import numbers
from accounts.models import COUNTRY_TIME_ZONES
from cobranza import texts
from cobranza.models import BusinessProfile

_remembered: contextvars.ContextVar[BusinessProfile | None] = contextvars.ContextVar("business_profile", default=None)


def current() -> BusinessProfile:
    """The business's profile; an unsaved blank one before an administrator has filled it in
    (every field then reads empty and ``setup_completed_at`` is None)."""
    profile = _remembered.get()
    if profile is not None:
        return profile
    return BusinessProfile.objects.filter(pk=1).first() or BusinessProfile()


@contextlib.contextmanager
def remembered():
    """Inside, ``current()`` is the profile read once on entry: a dispatch batch reads it once
    for its fifty messages instead of several times for each (the batch lasts seconds; a
    change made meanwhile applies from the next batch)."""
    token = _remembered.set(current())
    try:
        yield _remembered.get()
    finally:
        _remembered.reset(token)


def is_set_up() -> bool:
    return BusinessProfile.objects.filter(pk=1, setup_completed_at__isnull=False).exists()


def not_set_up_reason() -> str:
    """Why a debtor message is held while the business is not set up (dispatch, the
    instalment reminders, the warning on the staff pages)."""
    return texts.BUSINESS_NOT_SET_UP()


def not_set_up_reasons() -> list[str]:
    """The hold's reason in every language (a held notice stores the one it was held in)."""
    reasons = []
    for code, _name in settings.LANGUAGES:
        with translation.override(code):
            reasons.append(str(not_set_up_reason())[:255])
    return reasons


def sender(profile: BusinessProfile) -> str:
    """The From of a debtor email: "sender_name <sender_email>"."""
    return formataddr((profile.sender_name or profile.trade_name, profile.sender_email))


def reply_to(profile: BusinessProfile) -> list[str]:
    return [profile.reply_to] if profile.reply_to else []


def contact_email(profile: BusinessProfile) -> str:
    """Where a debtor writes to: the reply-to address, else the sender's."""
    return profile.reply_to or profile.sender_email


def message_id_domain(profile: BusinessProfile | None = None) -> str:
    """The domain of the deterministic Message-IDs: ``DUNNING_MESSAGE_ID_DOMAIN``, else the
    business sender's, else that of ``DEFAULT_FROM_EMAIL``."""
    configured = getattr(settings, "DUNNING_MESSAGE_ID_DOMAIN", "")
    if configured:
        return configured.strip("<> ")
    profile = profile if profile is not None else current()
    for address in (profile.sender_email, parseaddr(settings.DEFAULT_FROM_EMAIL)[1]):
        if "@" in address:
            return address.rsplit("@", 1)[-1].strip("<> ")
    return "localhost"


def public_url(profile: BusinessProfile, path: str) -> str:
    """``path`` (site-relative) on the address debtors reach this application at; the path
    alone while no public address is configured."""
    base = (profile.public_base_url or "").rstrip("/")
    return f"{base}{path}" if base else path


def business_country() -> str:
    """The business's country: the one whose time zone the installation runs in (TIME_ZONE)."""
    for country, zone in COUNTRY_TIME_ZONES.items():
        if zone == settings.TIME_ZONE:
            return country
    return "MX"


def number_format_of(profile: BusinessProfile) -> str:
    """The business's number format: its setting, else its country's (docs/domain.md#number-formats)."""
    chosen = profile.number_format or ""
    return chosen if chosen in numbers.RULES else numbers.country_rule(business_country())


def number_format() -> str:
    """``number_format_of`` the stored profile, reading only that column (``accounts.numbers``
    caches it per process)."""
    chosen = BusinessProfile.objects.filter(pk=1).values_list("number_format", flat=True).first() or ""
    return number_format_of(BusinessProfile(number_format=chosen))


def logo_path(profile: BusinessProfile) -> str:
    """The public logo's path with a version, so a new logo is not hidden by caches; empty
    without a logo."""
    if not profile.logo:
        return ""
    version = int(profile.updated_at.timestamp()) if profile.updated_at else 0
    return f"{reverse('business_logo')}?v={version}"


def logo_url(profile: BusinessProfile) -> str:
    """The logo's absolute address (for emails and portal pages); empty without a logo."""
    path = logo_path(profile)
    return public_url(profile, path) if path else ""


def logo_file_uri(profile: BusinessProfile) -> str:
    """The logo as a ``file://`` URI for WeasyPrint (letters and PDFs embed the file itself,
    no network); empty without a logo or when the file is missing."""
    if not profile.logo:
        return ""
    try:
        path = profile.logo.path
    except (NotImplementedError, ValueError):
        return ""
    file = Path(path)
    return file.resolve().as_uri() if file.is_file() else ""


def by_language(profile: BusinessProfile, field: str, language: str) -> str:
    """A per-language text (``signature``, ``legal_footer``) in ``language``, else Spanish."""
    lang = (language or "es").split("-")[0]
    return getattr(profile, f"{field}_{lang}", "") or getattr(profile, f"{field}_es", "") or ""
