"""The number format of a request (docs/domain.md#number-formats): the signed-in user's own
rule (``UserPreference``), else the business's. Both are read at login and kept (the user's in
the session, the business's per process: ``accounts.numbers``), so a page pays no query for them.
"""

from __future__ import annotations

from accounts import numbers
from accounts.models import UserPreference

SESSION_KEY = "number_format"


def user_code(request, user=None) -> str:
    """The signed-in user's own rule ("" = the business's), read once per session."""
    user = user if user is not None else getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return ""
    session = getattr(request, "session", None)
    code = session.get(SESSION_KEY) if session is not None else None
    if code is None:
        code = UserPreference.objects.filter(user=user).values_list("number_format", flat=True).first() or ""
        if session is not None:
            session[SESSION_KEY] = code
    return code if code in numbers.RULES else ""


def on_login(sender, request, user, **kwargs) -> None:
    """``user_logged_in``: the user's rule goes into the session and the business's is read,
    so the requests that follow read neither."""
    session = getattr(request, "session", None)
    if session is not None:
        session.pop(SESSION_KEY, None)
        user_code(request, user)
    numbers.business_code()


class NumberFormatMiddleware:
    """Formats the request's numbers in the user's rule, else the business's (read lazily:
    a page that formats no number reads nothing)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        with numbers.override(user_code(request)):
            return self.get_response(request)
