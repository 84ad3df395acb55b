"""Reads of the business's identity (``cobranza.models.BusinessProfile``)."""

from cobranza.models import BusinessProfile


def current() -> BusinessProfile:
    """The business's profile; an unsaved blank one before an administrator has filled it in
    (every field then reads empty and ``setup_completed_at`` is None)."""
    return BusinessProfile.objects.filter(pk=1).first() or BusinessProfile()


def is_set_up() -> bool:
    return BusinessProfile.objects.filter(pk=1, setup_completed_at__isnull=False).exists()
