"""The first-login setup: while the business is not set up, an administrator is taken to the
setup form before anything else; other staff see a notice asking an administrator to finish it
(docs/domain.md, "Who the debtor hears from").

The state is read once at login and kept in the session, so a set-up installation pays no
query per request: only while setup is pending is it checked again (and then dropped as soon
as an administrator finishes it)."""

from __future__ import annotations

from urllib.parse import urlencode

from django.shortcuts import redirect
from django.urls import reverse

from accounts.roles import is_admin
from cobranza.business import selectors

SETUP_SESSION_KEY = "business_setup"
PENDING, DONE = "pending", "done"
# Pages an administrator may reach while setup is pending.
EXEMPT_VIEWS = frozenset(
    {"cobranza:business_setup", "cobranza:business_settings", "logout", "set_language", "business_logo"}
)


def on_login(sender, request, user, **kwargs) -> None:
    """``user_logged_in``: remember whether the business was set up at this login."""
    session = getattr(request, "session", None)
    if session is not None:
        session[SETUP_SESSION_KEY] = DONE if selectors.is_set_up() else PENDING


def mark_done(request) -> None:
    request.session[SETUP_SESSION_KEY] = DONE
    request.business_setup_pending = False


class BusinessSetupMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        request.business_setup_pending = False
        user = getattr(request, "user", None)
        session = getattr(request, "session", None)
        if user is None or session is None or not user.is_authenticated:
            return None
        state = session.get(SETUP_SESSION_KEY)
        if state == DONE:
            return None
        # A session from before this check (state None), or setup still pending: look again.
        if selectors.is_set_up():
            session[SETUP_SESSION_KEY] = DONE
            return None
        session[SETUP_SESSION_KEY] = PENDING
        request.business_setup_pending = True
        if not is_admin(user) or request.method not in ("GET", "HEAD"):
            return None
        match = request.resolver_match
        if getattr(view_func, "login_required", True) is False or (match and match.view_name in EXEMPT_VIEWS):
            return None
        if request.path.startswith(("/api/", "/admin/")) or getattr(request, "htmx", False):
            return None
        return redirect(f"{reverse('cobranza:business_setup')}?{urlencode({'next': request.get_full_path()})}")
